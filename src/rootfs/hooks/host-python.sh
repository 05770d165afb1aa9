#!/bin/sh
# Prints the host's CPython of version $1 (e.g. 3.13) when there is one that runs and is
# that version, else nothing. A `python3.13` on PATH is not enough: a pyenv shim names
# every version pyenv knows and fails when that one is not selected.
set -u
version="$1"
for candidate in "/usr/bin/python$version" $(command -v "python$version" 2>/dev/null); do
    [ -x "$candidate" ] || continue
    if "$candidate" -I -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != sys.argv[1])' \
        "$version" >/dev/null 2>&1; then
        echo "$candidate"
        exit 0
    fi
done
