#!/usr/bin/env bash
# Builds the amd64 container workshop server (ci/container-server.yaml), runs two
# containers of it with podman and checks every service from the host:
#   - the landing page lists the lesson, the mirrors and every service;
#   - a lesson page answers;
#   - `pip install` from the PyPI mirror and `install.packages()` from the CRAN mirror
#     work (the host's pip and R, as a learner's laptop would use them);
#   - Etherpad creates a pad (HTTP API through nginx) and serves it;
#   - JupyterHub logs in a learner from the build's CSV (and refuses a wrong password),
#     spawns their notebook server and serves their notebook tree, whose Python imports
#     the extra pip package the recipe adds;
#   - Gitea (a stand-in binary from ci/fixtures) answers at /gitea/;
#   - no unit failed;
#   - the image holds no SSH host key, machine-id or Gitea secret, and the two running
#     containers made their own, different ones (and different Etherpad API keys).
#   ci/container-test.sh            (needs root for the build's steps, the Debian archive,
#                                    PyPI and the npm registry)
# KEEP=1 leaves the containers running for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh >/dev/null
. ci/ensure-rust.sh >/dev/null
cargo build --release --locked -q

work=$(mktemp -d)
names=(imgbuild-ct-1 imgbuild-ct-2)
cleanup() {
  kill "${fixture_pid:-}" 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then podman rm -f "${names[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The fixtures: ci/fixtures plus a one-package CRAN (R installs it from source, so it is
# a real package with a DESCRIPTION, NAMESPACE and R code).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

fix=$work/fixtures
cp -a ci/fixtures "$fix"
contrib=$fix/cloud.r-project.org/src/contrib
mkdir -p "$contrib" "$work/pkg/hellofixture/R"
cat > "$work/pkg/hellofixture/DESCRIPTION" <<'DESC'
Package: hellofixture
Version: 1.0.0
Title: A Package the Container Test Installs from the CRAN Mirror
Description: Says hello from the workshop server's CRAN mirror.
Author: imgbuild CI
Maintainer: imgbuild CI <ci@example.org>
License: MIT + file LICENSE
NeedsCompilation: no
DESC
echo "YEAR: 2026" > "$work/pkg/hellofixture/LICENSE"
echo 'export(hello)' > "$work/pkg/hellofixture/NAMESPACE"
echo 'hello <- function() "hello from the CRAN mirror"' > "$work/pkg/hellofixture/R/hello.R"
tar -C "$work/pkg" -czf "$contrib/hellofixture_1.0.0.tar.gz" hellofixture
md5=$(md5sum "$contrib/hellofixture_1.0.0.tar.gz" | cut -d' ' -f1)
printf 'Package: hellofixture\nVersion: 1.0.0\nLicense: MIT + file LICENSE\nNeedsCompilation: no\nMD5sum: %s\n\n' "$md5" > "$contrib/PACKAGES"
gzip -k "$contrib/PACKAGES"

port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$fix" "$port" >/dev/null 2>&1 &
fixture_pid=$!

echo "== build ci/container-server.yaml"
# Test secrets: the image is thrown away.
export IMGBUILD_JUPYTERHUB_USERS=$'ada,lovelace-ci-1843\ngrace,hopper-ci-1952,admin'
export IMGBUILD_GITEA_ADMIN_PASSWORD=gitea-ci-only
target/release/imgbuild --set "fixtures=http://127.0.0.1:$port/" ci/container-server.yaml
archive=images/container-server/container-server.oci.tar
image=localhost/carpentriesoffline:latest
podman load -q -i "$archive"

failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1" >&2; failed=$((failed + 1)); }
check() { # check NAME COMMAND...: passes when the command succeeds
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# Some hosts' podman (this build machine's) needs runc and lower limits than the host's
# defaults.
opts=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
if command -v runc >/dev/null; then opts+=(--runtime runc); fi

# The image as built, before anything ran: nothing per-device in it.
static=$(podman run --rm "${opts[@]}" --systemd=false --entrypoint /bin/sh "$image" -c '
  ls /etc/ssh/ssh_host_* 2>/dev/null; echo "machine-id=[$(cat /etc/machine-id)]"
  grep -E "^(SECRET_KEY|INTERNAL_TOKEN|JWT_SECRET|LFS_JWT_SECRET) *=" /etc/gitea/app.ini
  ls /var/lib/etherpad 2>/dev/null; true')
echo "$static" | sed 's/^/  image: /'
check "image holds no SSH host key" bash -c "! grep -q ssh_host <<<\"\$1\"" _ "$static"
check "image holds an empty machine-id" grep -qx 'machine-id=\[\]' <<<"$static"
check "image holds no Gitea secret" bash -c "! grep -E '^[A-Z_]+ *= *[^ ]' <<<\"\$1\"" _ "$static"

ports=()
for n in "${names[@]}"; do
  podman rm -f "$n" >/dev/null 2>&1 || true
  p=$(free_port)
  ports+=("$p")
  podman run -d --name "$n" -p "127.0.0.1:$p:80" "${opts[@]}" "$image" >/dev/null
done
base=http://127.0.0.1:${ports[0]}
c=${names[0]}

state=""
for _ in $(seq 1 120); do
  state=$(podman exec "$c" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 2
done
echo "systemd: $state"
check "systemd is running with no failed unit" test "$state" = running
podman exec "$c" systemctl --failed --no-legend || true

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
wait_for() { # wait_for URL: up to 3 minutes for a 200
  for _ in $(seq 1 90); do [ "$(code "$1")" = 200 ] && return 0; sleep 2; done
  return 1
}

landing=$(curl -sf "$base/" || true)
for want in "The Unix Shell" "Etherpad" "JupyterHub" "Gitea" "/pypi/" "/cran\""; do
  check "landing page names $want" grep -qF "$want" <<<"$landing"
done
check "lesson page answers" test "$(code "$base/lessons/software-carpentry/shell-novice/episodes/02-filedir.html")" = 200

python3 -m venv "$work/venv"
check "pip installs from the PyPI mirror" bash -c '
  "$1/venv/bin/pip" install -q --no-cache-dir --index-url "$2/pypi/" six &&
  "$1/venv/bin/python" -c "import six"' _ "$work" "$base"

mkdir -p "$work/rlib"
check "R installs from the CRAN mirror" Rscript -e "
  install.packages('hellofixture', repos = '$base/cran', lib = '$work/rlib', quiet = TRUE)
  library(hellofixture, lib.loc = '$work/rlib')
  stopifnot(hello() == 'hello from the CRAN mirror')"

check "Etherpad answers" wait_for "$base/etherpad/"
key=$(podman exec "$c" cat /var/lib/etherpad/APIKEY.txt 2>/dev/null || true)
created=$(curl -s "$base/etherpad/api/1/createPad?apikey=$key&padID=ci-notes&text=Hello%20from%20CI" || true)
check "Etherpad creates a pad" grep -q '"code":0' <<<"$created"
text=$(curl -s "$base/etherpad/api/1/getText?apikey=$key&padID=ci-notes" || true)
check "Etherpad keeps the pad's text" grep -qF 'Hello from CI' <<<"$text"
check "Etherpad serves the pad" test "$(code "$base/etherpad/p/ci-notes")" = 200

jar=$work/cookies
hub_login() { # hub_login USER PASSWORD: the HTTP status of the login form's POST
  rm -f "$jar"
  local form xsrf
  form=$(curl -s -c "$jar" -b "$jar" "$base/jupyter/hub/login")
  xsrf=$(grep -o 'name="_xsrf" value="[^"]*"' <<<"$form" | sed 's/.*value="//; s/"$//' || true)
  curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "username=$1" --data-urlencode "password=$2" --data-urlencode "_xsrf=$xsrf" \
    "$base/jupyter/hub/login?next="
}
check "JupyterHub answers" wait_for "$base/jupyter/hub/login"
check "JupyterHub refuses a wrong password" test "$(hub_login ada wrong-password)" != 302
check "JupyterHub logs in a CSV learner" test "$(hub_login ada lovelace-ci-1843)" = 302
tree=""
for _ in $(seq 1 60); do
  tree=$(curl -s -L -o /dev/null -w '%{http_code} %{url_effective}' -c "$jar" -b "$jar" "$base/jupyter/hub/spawn/ada" || true)
  [ "$(code -b "$jar" "$base/jupyter/user/ada/tree")" = 200 ] && break
  sleep 3
done
echo "  spawn: $tree"
check "JupyterHub serves the learner's notebook tree" test "$(code -b "$jar" "$base/jupyter/user/ada/tree")" = 200
check "the learner's home links the shared folder" podman exec "$c" test -L /home/ada/shared
check "the notebooks' Python imports the extra pip package" \
  podman exec --user ada "$c" python3 -c 'import tabulate; print(tabulate.tabulate([[1, 2]]))'

check "Gitea answers" bash -c 'curl -sf "$1/gitea/" | grep -q "Gitea fixture"' _ "$base"

# What each device makes for itself differs between the two containers.
per_device() { # per_device CONTAINER: "NAME VALUE" lines
  podman exec "$1" sh -c '
    echo "ssh-host-key $(cat /etc/ssh/ssh_host_ed25519_key.pub)"
    echo "machine-id $(cat /etc/machine-id)"
    for k in SECRET_KEY INTERNAL_TOKEN JWT_SECRET LFS_JWT_SECRET; do
      echo "$k $(sed -n "s/^$k *= *//p" /etc/gitea/app.ini | head -n 1)"
    done
    echo "etherpad-api-key $(cat /var/lib/etherpad/APIKEY.txt)"' 2>/dev/null || true
}
c2=${names[1]}
wait_for "http://127.0.0.1:${ports[1]}/etherpad/" || true
one=$(per_device "$c"); two=$(per_device "$c2")
for what in ssh-host-key machine-id SECRET_KEY INTERNAL_TOKEN JWT_SECRET LFS_JWT_SECRET etherpad-api-key; do
  a=$(awk -v k="$what" '$1 == k { $1 = ""; print substr($0, 2) }' <<<"$one")
  b=$(awk -v k="$what" '$1 == k { $1 = ""; print substr($0, 2) }' <<<"$two")
  check "each container makes its own $what" bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]' _ "$a" "$b"
done

if [ "$failed" -gt 0 ]; then
  echo "container-test: $failed checks failed" >&2
  podman exec "$c" journalctl -b --no-pager -p warning | tail -40 >&2 || true
  exit 1
fi
echo "container-test: all checks passed"
