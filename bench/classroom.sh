#!/usr/bin/env bash
# A classroom against the container workshop server: builds it and checks every service
# (ci/container-test.sh, which leaves the containers running with KEEP=1), then runs
# bench/learners.py with 30 learners (LEARNERS=N for another number) against the first
# container, and removes the containers. Needs what ci/container-test.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'podman rm -f imgbuild-ct-1 imgbuild-ct-2 >/dev/null 2>&1 || true; rm -f "$log"' EXIT
if ! KEEP=1 bash ci/container-test.sh >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "bench/classroom.sh: the container server failed its checks" >&2
  exit 1
fi
port=$(podman port imgbuild-ct-1 80 | cut -d: -f2)
python3 bench/learners.py "http://127.0.0.1:$port" --learners "${LEARNERS:-30}" \
  --lessons 3 --pages 5 --packages six packaging idna
