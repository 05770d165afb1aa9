#!/usr/bin/env python3
"""Where an installation's time went, from dpkg's log: each line's time (until the next
line) is charged to what that line starts. `status half-configured PKG` starts PKG's
postinst; `trigproc PKG` starts PKG's trigger; `status unpacked`/`half-installed` are
unpacking. Prints the largest items and the totals per kind.

    bench/dpkg-time.py DPKG_LOG [TOP]
"""

import collections
import datetime
import sys


def parse(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            try:
                when = datetime.datetime.strptime(parts[0] + " " + parts[1], "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            rows.append((when, parts[2:]))
    return rows


def kind_of(words):
    if words[0] == "trigproc":
        return "trigger", words[1].split(":")[0]
    if words[0] == "status" and len(words) >= 3:
        state, pkg = words[1], words[2].split(":")[0]
        if state == "half-configured":
            return "postinst", pkg
        if state in ("unpacked", "half-installed"):
            return "unpack", pkg
    if words[0] in ("install", "upgrade", "configure", "startup"):
        return "dpkg", words[0]
    return "other", words[0]


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    rows = parse(path)
    if len(rows) < 2:
        sys.exit(f"{path}: no dpkg log lines")
    items = collections.Counter()
    kinds = collections.Counter()
    for (when, words), (after, _) in zip(rows, rows[1:]):
        secs = (after - when).total_seconds()
        kind, name = kind_of(words)
        items[(kind, name)] += secs
        kinds[kind] += secs
    total = (rows[-1][0] - rows[0][0]).total_seconds()
    for (kind, name), secs in items.most_common(top):
        print(f"  {secs:7.0f} s  {kind:9} {name}")
    summary = ", ".join(f"{k} {v:.0f} s" for k, v in kinds.most_common())
    print(f"  total {total:.0f} s: {summary}")


if __name__ == "__main__":
    main()
