#!/usr/bin/env bash
# Regenerates tiny-rootfs.tar.gz from the tiny-rootfs/ directory: root-owned, sorted,
# fixed timestamps, so the archive is the same on every machine.
set -euo pipefail
cd "$(dirname "$0")"
tar --format=pax --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime=@1700000000 --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C tiny-rootfs -cf - . | gzip -9n > tiny-rootfs.tar.gz
