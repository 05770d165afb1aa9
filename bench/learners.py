#!/usr/bin/env python3
"""A classroom against a workshop server: N simulated learners at once, each opening the
landing page, following it to lesson pages with every stylesheet, script and image they
use, and installing packages from the server's PyPI mirror with real pip.

    bench/learners.py http://127.0.0.1:8080 [--learners 30] [--lessons 3] [--packages six]

Prints the number of requests and errors, p50/p99 latency per request, throughput, and
how long each learner's pip took; exits non-zero on any error. Standard library only, so
it runs on any machine with python3 and pip.
"""

import argparse
import html.parser
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request


class Links(html.parser.HTMLParser):
    """Links (<a href>) and page requisites (stylesheets, scripts, images) of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.requisites = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "link" and a.get("href") and "stylesheet" in (a.get("rel") or ""):
            self.requisites.append(a["href"])
        elif tag in ("script", "img") and a.get("src"):
            self.requisites.append(a["src"])


class Log:
    """Every request's latency and every error, from all learners."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies, self.errors, self.pip_seconds, self.bytes = [], [], [], 0
        self.first, self.last = None, None  # when web requests began and ended

    def get(self, url):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                body = r.read()
                status = r.status
        except Exception as e:  # every failure counts, whatever its kind
            with self.lock:
                self.errors.append(f"{url}: {e}")
            return None
        took = time.perf_counter() - start
        with self.lock:
            self.latencies.append(took)
            self.first = start if self.first is None else min(self.first, start)
            self.last = max(self.last or 0, start + took)
            self.bytes += len(body)
            if status != 200:
                self.errors.append(f"{url}: HTTP {status}")
        return body


def same_server(base, url):
    return urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(base).netloc


def learner(base, lessons, pages, packages, log, workdir):
    seen = set()  # the browser's cache: each stylesheet, script or image once

    def visit(url):
        body = log.get(url)
        if body is None:
            return Links()
        page = Links()
        page.feed(body.decode("utf-8", "replace"))
        for r in page.requisites:
            asset = urllib.parse.urljoin(url, r)
            if same_server(base, asset) and asset not in seen:
                seen.add(asset)
                log.get(asset)
        return page

    landing = visit(base + "/")
    lesson_links = [l for l in landing.links if "/lessons/" in l][:lessons]
    for link in lesson_links:
        home = urllib.parse.urljoin(base + "/", link)
        lesson = visit(home)
        # Then through the lesson's own pages (its episodes), as a learner clicks on.
        inside = []
        for l in lesson.links:
            url = urllib.parse.urljoin(home, l).split("#")[0]
            if url.startswith(home) and url != home and url not in inside:
                inside.append(url)
        for url in inside[:pages]:
            visit(url)
    if packages:
        start = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        # A real install (into the learner's own directory), as `pip install` on a laptop.
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir",
               "--disable-pip-version-check", "--only-binary", ":all:",
               "--index-url", base + "/pypi/", "--trusted-host",
               urllib.parse.urlsplit(base).hostname, "--target", workdir, *packages]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        with log.lock:
            log.pip_seconds.append(time.perf_counter() - start)
            if done.returncode != 0:
                log.errors.append(f"pip install {' '.join(packages)}: {done.stderr.strip()[-300:]}")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("server", help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--learners", type=int, default=30)
    ap.add_argument("--lessons", type=int, default=3, help="lessons each learner opens")
    ap.add_argument("--pages", type=int, default=5, help="pages each learner reads in each lesson")
    ap.add_argument("--packages", nargs="*", default=["six"], help="what each learner installs")
    args = ap.parse_args()
    base = args.server.rstrip("/")
    log = Log()
    with tempfile.TemporaryDirectory() as tmp:
        threads = [threading.Thread(target=learner, args=(base, args.lessons, args.pages, args.packages, log,
                                                            os.path.join(tmp, str(i))))
                   for i in range(args.learners)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    n = len(log.latencies)
    print(f"learners:    {args.learners} at once, {args.lessons} lessons of {args.pages} pages each, "
          f"pip: {' '.join(args.packages) or '-'}")
    print(f"requests:    {n} ok, {len(log.errors)} errors, {log.bytes / 1e6:.1f} MB in {wall:.1f} s")
    if n:
        print(f"latency:     p50 {percentile(log.latencies, 50) * 1000:.1f} ms, "
              f"p99 {percentile(log.latencies, 99) * 1000:.1f} ms, max {max(log.latencies) * 1000:.1f} ms")
        # Web requests only, over the time they were in flight (pip runs after them).
        web = max(log.last - log.first, 1e-9)
        print(f"throughput:  {n / web:.1f} requests/s, {log.bytes / 1e6 / web:.1f} MB/s (web pages and assets)")
    if log.pip_seconds:
        print(f"pip:         median {statistics.median(log.pip_seconds):.1f} s, "
              f"slowest {max(log.pip_seconds):.1f} s per learner "
              f"({len(log.pip_seconds)} pip processes at once on this machine's {os.cpu_count()} cores)")
    for e in log.errors[:10]:
        print(f"error: {e}", file=sys.stderr)
    return 1 if log.errors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
