#!/usr/bin/env bash
# Lints the GitHub workflows offline: zizmor (security: no finding of high severity) and
# check-jsonschema's vendored GitHub workflow schema. Both come from PyPI through
# ci/install-host-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
workflows=(.github/workflows/*.yml)
check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"
zizmor --offline --min-severity high "${workflows[@]}"
echo "workflows: ${#workflows[@]} checked (schema, zizmor)"
