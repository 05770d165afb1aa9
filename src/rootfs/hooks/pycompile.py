"""imgbuild: byte-compile, once, what every package's postinst asked py3compile for.

During the bootstrap py3compile is diverted to a no-op: under qemu-user each call starts
an emulated interpreter (seconds) for every Python package. This script does the same
work afterwards, run by the host's CPython of the target's default version where there
is one (bytecode depends on the Python version only, not on the CPU), else by the
target's own python3 in the chroot: one process instead of one per package.

    pycompile.py ROOT     ROOT: the target's root directory ("/" inside the chroot)

What is compiled follows py3compile's rules: `py3compile -p PKG` compiles PKG's files in
the public directories (/usr/lib/python3/dist-packages, /usr/lib/python3.X/...);
`py3compile -p PKG DIR...` PKG's files under each DIR, minus `-X REGEX`; `py3compile DIR`
every .py file under DIR. A file that does not compile is skipped, as py3compile's
workers leave it.
"""

import concurrent.futures
import glob
import importlib.util
import os
import py_compile
import re
import shlex
import sys

PUBLIC = re.compile(r"/usr/lib/python(\d(?:\.\d+)?)/(?:site|dist)-packages/")


def postinst_calls(root):
    """Each py3compile command line in the installed packages' postinst scripts."""
    for script in sorted(glob.glob(os.path.join(root, "var/lib/dpkg/info/*.postinst"))):
        with open(script, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.strip()
                if not words.startswith("py3compile "):
                    continue
                # Stop at the shell's own syntax: `py3compile -p x || true`.
                words = re.split(r"\s(?:\|\||&&|;|\|)\s*|;$", words)[0]
                try:
                    yield shlex.split(words)[1:]
                except ValueError:
                    continue


def parse(args):
    package, dirs, excludes, optimize = None, [], [], False
    it = iter(args)
    for a in it:
        if a in ("-p", "--package"):
            package = next(it, None)
        elif a.startswith("--package="):
            package = a.split("=", 1)[1]
        elif a in ("-X", "--exclude"):
            excludes.append(re.compile(next(it, "")))
        elif a == "-V":
            next(it, None)
        elif a == "-O":
            optimize = True
        elif not a.startswith("-"):
            dirs.append(a)
    return package, dirs, excludes, optimize


def package_files(root, package):
    """The files dpkg lists for PACKAGE (`name` or `name:arch`, as postinsts name it)."""
    info = os.path.join(root, "var/lib/dpkg/info")
    name = package.split(":", 1)[0]
    candidates = [package + ".list", name + ".list"]
    candidates += sorted(os.path.basename(p) for p in glob.glob(os.path.join(info, glob.escape(name) + ":*.list")))
    for c in candidates:
        path = os.path.join(info, c)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                return [line.rstrip("\n") for line in f]
    return []


def walk(root, top):
    for d, _, names in os.walk(os.path.join(root, top.lstrip("/"))):
        for n in names:
            yield "/" + os.path.relpath(os.path.join(d, n), root)


def wanted(root, version):
    """(path in the target, optimize) for every file py3compile would have compiled."""
    versions = {"3", version}
    out = set()
    for args in postinst_calls(root):
        package, dirs, excludes, optimize = parse(args)
        if package and dirs:
            files = package_files(root, package)
            chosen = [f for f in files for d in dirs if f == d or f.startswith(d.rstrip("/") + "/")]
        elif package:
            chosen = [f for f in package_files(root, package)
                      if (m := PUBLIC.match(f)) and m.group(1) in versions]
        else:
            chosen = [f for d in dirs for f in walk(root, d)]
        for f in chosen:
            if f.endswith(".py") and not any(x.search(f) for x in excludes):
                out.add((f, optimize))
    return sorted(out)


def compile_one(job):
    root, path, optimize = job
    source = os.path.join(root, path.lstrip("/"))
    if not os.path.isfile(source):
        return 0
    done = 0
    for level in ((-1, 1) if optimize else (-1,)):
        # cfile is computed for the target path, so the cache tag is this interpreter's
        # (cpython-3XY), which the caller checked is the target's.
        cfile = os.path.join(root, importlib.util.cache_from_source(
            path, optimization="" if level < 1 else level).lstrip("/"))
        try:
            py_compile.compile(source, cfile=cfile, dfile=path, doraise=True, optimize=level)
            done += 1
        except (py_compile.PyCompileError, OSError, ValueError):
            pass
    return done


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: pycompile.py ROOT")
    root = os.path.abspath(sys.argv[1])
    version = "%d.%d" % sys.version_info[:2]
    jobs = [(root, path, opt) for path, opt in wanted(root, version)]
    try:
        with concurrent.futures.ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            done = sum(pool.map(compile_one, jobs, chunksize=64))
    except (OSError, ImportError, NotImplementedError):
        # No working semaphores (a chroot without /dev/shm): one process does it all.
        done = sum(map(compile_one, jobs))
    print(f"imgbuild: byte-compiled {done} of {len(jobs)} Python files with Python {version}")


if __name__ == "__main__":
    main()
