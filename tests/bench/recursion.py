#!/usr/bin/env python3
"""recursion.py: areq -d N against wget2 -r -l N --spider on the same generated site.

    tests/bench/recursion.py [--areq build/src/areq] [--runs 5] [--depth 2]
                             [--pages 2000] [--links 150] [--size 74000] [--seed 1]
                             [--start 0] [--site DIR] [--wget2-opts "..."] [--areq-opts "..."]
                             [--compare PATH] [--no-floors]

It generates a site with tests/bench/gen_site.py (into a temp dir, or reuses --site DIR if
it holds site.json), serves it with its own nginx instance on a free loopback port (config,
pid and an access log under a temp dir: tests/bench/nginx.sh turns the access log off, and
this script needs it to see what each crawler fetched), then from the one start page
p/<start>.html runs, alternating, N times each:

    areq -d DEPTH -o /dev/null urls.txt                  (robots.txt obeyed: the site has
                                                          none, so nginx answers 404)
    wget2 -r -l DEPTH --spider -q -e robots=on --no-host-directories
          --ignore-tags=img/src,script/src ... START

(areq follows href attributes only, hence --ignore-tags. nginx sends no ETag: wget2 does not
scan a page whose ETag it has already seen, which would skip the links of the same file
reached under another query string. wget2's spider sends HEAD for every URL and a GET for
the pages it scans; areq sends one GET each; the sets compared are request targets.)

After every run it reads the access log (truncated before the run) and checks that both
crawlers requested the same set of request targets (robots.txt excluded, query strings
kept). It prints each run's wall time, the medians and areq/wget2 (below 1: areq faster).
Exit status 1 when the sets differ.

Two more rows, in the same alternation, read the crawl against what its parts cost on this
machine (--no-floors leaves them out). Both get the URLs the crawl fetched (from an untimed
areq run first) as a flat list, so neither recurses:

    fetch alone   curl -Z --parallel-max 8 (areq's per-host default), bodies to /dev/null:
                  no parsing at all, the floor for any crawler that must GET these pages
    areq flat     areq -c 8 -o /dev/null on the list: fetch, scan and format every page
                  without the frontier

--compare PATH times a second areq build in the same alternation: the row "cmp" runs the
crawl, and "cmpflat" the flat list, with PATH in place of --areq; both must fetch the same set
as areq. The end then gives, for the crawl and the flat list, both builds' medians, minimum
and maximum of wall time (and of CPU time), the ratio areq/compare of the medians (above 1: --areq is slower) and the median
of each run's ratio (run i of both ran in the same round, under much the same load).
"""
import argparse
import json
import os
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

NGINX_CONF = """\
{user}
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
daemon on;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    types {{ text/html html htm; text/plain txt; }}
    log_format areq '$request_method\\t$request_uri\\t$status';
    access_log {tmp}/access.log areq;
    sendfile on;
    etag off;  # wget2 skips scanning a page whose ETag it has seen (same file, other query)
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name localhost;
        root {root};
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Nginx:
    def __init__(self, root):
        self.tmp = tempfile.mkdtemp(prefix="areq-bench-recursion-")
        self.port = free_port()
        self.log = os.path.join(self.tmp, "access.log")
        with open(os.path.join(self.tmp, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, port=self.port, root=root,
                                      user="user root;" if os.getuid() == 0 else ""))
        subprocess.run(["/usr/sbin/nginx", "-p", self.tmp, "-c", os.path.join(self.tmp, "nginx.conf")],
                       check=True, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def reset_log(self):
        open(self.log, "w").close()

    def requests(self):
        time.sleep(0.05)  # the last lines
        out = []
        with open(self.log, encoding="utf-8", errors="replace") as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) == 3:
                    out.append((p[0], p[1], p[2]))
        return out

    def stop(self):
        pid_file = os.path.join(self.tmp, "nginx.pid")
        try:
            with open(pid_file) as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def timed(argv, cwd):
    t0 = time.monotonic()
    p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    return time.monotonic() - t0, p.returncode, p.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--areq", default=os.path.join(REPO, "build", "src", "areq"))
    ap.add_argument("--wget2", default="wget2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--links", type=int, default=150)
    ap.add_argument("--size", type=int, default=74000)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--site", help="site directory (generated when it has no site.json)")
    ap.add_argument("--areq-opts", default="")
    ap.add_argument("--wget2-opts", default="")
    ap.add_argument("--curl", default="curl")
    ap.add_argument("--no-floors", action="store_true",
                    help="leave out the fetch-alone and flat-list rows")
    ap.add_argument("--compare", metavar="PATH",
                    help="a second areq build, timed beside --areq run by run")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="areq-bench-recursion-work-")
    site = a.site or os.path.join(work, "site")
    if not os.path.exists(os.path.join(site, "site.json")):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_site.py"), site, "--pages",
                        str(a.pages), "--links", str(a.links), "--size", str(a.size),
                        "--seed", a.seed], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(site, "site.json")) as f:
        info = json.load(f)
    ng = Nginx(os.path.abspath(site))
    try:
        start = "http://127.0.0.1:%d/p/%05d.html" % (ng.port, a.start)
        with open(os.path.join(work, "urls.txt"), "w") as f:
            f.write(start + "\n")
        areq = [os.path.abspath(a.areq), "-d", str(a.depth), "-o", "/dev/null"] + \
            shlex.split(a.areq_opts) + ["urls.txt"]
        wget2 = [a.wget2, "-r", "-l", str(a.depth), "--spider", "-q", "-e", "robots=on",
                 "--no-config", "--no-host-directories",
                 "--ignore-tags=img/src,script/src", "-P", os.path.join(work, "w")] + \
            shlex.split(a.wget2_opts) + [start]
        print("site: %s (%s)" % (site, json.dumps(info, sort_keys=True)))
        print("areq:  %s" % " ".join(areq))
        print("wget2: %s" % " ".join(wget2))
        contenders = [("areq", areq)]
        if a.compare:
            contenders.append(("cmp", [os.path.abspath(a.compare)] + areq[1:]))
            print("cmp:   %s" % " ".join(contenders[-1][1]))
        contenders.append(("wget2", wget2))
        if not a.no_floors:
            # An untimed crawl gives the list of what the crawl fetches.
            ng.reset_log()
            timed(areq, work)
            targets = sorted({r[1] for r in ng.requests() if r[1] != "/robots.txt"})
            base = "http://127.0.0.1:%d" % ng.port
            with open(os.path.join(work, "flat.txt"), "w") as f:
                f.writelines(base + t + "\n" for t in targets)
            with open(os.path.join(work, "flat.curl"), "w") as f:
                for t in targets:
                    f.write('url = "%s%s"\noutput = "/dev/null"\n' % (base, t))
            if shutil.which(a.curl):
                contenders.append(("fetch", [a.curl, "-Z", "--parallel-max", "8", "-s",
                                             "--no-progress-meter", "-K", "flat.curl"]))
                print("fetch: %s" % " ".join(contenders[-1][1]))
            else:
                print("fetch: %s not found, row left out" % a.curl)
            contenders.append(("flat", [os.path.abspath(a.areq), "-c", "8", "-o", "/dev/null"] +
                               shlex.split(a.areq_opts) + ["flat.txt"]))
            print("flat:  %s" % " ".join(contenders[-1][1]))
            if a.compare:
                contenders.append(("cmpflat", [os.path.abspath(a.compare)] + contenders[-1][1][1:]))
                print("cmpflat: %s" % " ".join(contenders[-1][1]))
        times = {name: [] for name, _ in contenders}
        cpu = {name: [] for name, _ in contenders}  # CPU seconds, user + system
        width = max(5, max(len(name) for name, _ in contenders))
        sets = {}
        ok = True
        for i in range(a.runs):
            k = i % len(contenders)
            order = contenders[k:] + contenders[:k]
            for name, argv in order:
                shutil.rmtree(os.path.join(work, "w"), ignore_errors=True)
                ng.reset_log()
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t, rc, err = timed(argv, work)
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)
                reqs = ng.requests()
                pages = {r[1] for r in reqs if r[1] != "/robots.txt"}
                dup = len([r for r in reqs if r[1] != "/robots.txt"]) - len(pages)
                robots = sum(r[1] == "/robots.txt" for r in reqs)
                times[name].append(t)
                print("run %d %-*s %7.3f s  rc=%d  %d requests (%d distinct, %d repeated, "
                      "%d robots.txt, %d non-200)"
                      % (i + 1, width, name, t, rc, len(reqs), len(pages), dup, robots,
                         sum(r[2] != "200" for r in reqs)))
                if name in ("areq", "flat", "cmp", "cmpflat") and rc not in (0, 1):
                    print("  %s stderr: %s" % (name, err[-500:]))
                if name == "fetch" and rc != 0:
                    print("  curl: exit %d: %s" % (rc, err[-300:]))
                    ok = False
                prev = sets.get(name)
                if prev is not None and prev != pages:
                    print("  %s fetched a different set than its first run" % name)
                    ok = False
                sets.setdefault(name, pages)
        ma, mw = statistics.median(times["areq"]), statistics.median(times["wget2"])
        same = sets["areq"] == sets["wget2"]
        if not same:
            ok = False
            only_a = sorted(sets["areq"] - sets["wget2"])
            only_w = sorted(sets["wget2"] - sets["areq"])
            print("DIFFERENT sets: only areq %d %s; only wget2 %d %s"
                  % (len(only_a), only_a[:5], len(only_w), only_w[:5]))
        print("pages fetched: areq %d, wget2 %d, same set: %s"
              % (len(sets["areq"]), len(sets["wget2"]), "yes" if same else "NO"))
        for name in ("fetch", "flat", "cmp", "cmpflat"):
            if times.get(name) and sets.get(name) != sets["areq"]:
                print("%s fetched a different set than the crawl" % name)
                ok = False
        print("median areq %.3f s, wget2 %.3f s, ratio areq/wget2 %.3f" % (ma, mw, ma / mw))
        if times.get("fetch"):
            mf = statistics.median(times["fetch"])
            print("median fetch alone (curl -Z, 8 connections, same URLs) %.3f s: wget2/fetch %.3f"
                  % (mf, mw / mf))
        if times.get("flat"):
            print("median areq flat (-c 8, same URLs, no frontier) %.3f s"
                  % statistics.median(times["flat"]))
        for mine, theirs, what in (("areq", "cmp", "crawl"), ("flat", "cmpflat", "flat list")):
            if times.get(theirs):
                m, c = statistics.median(times[mine]), statistics.median(times[theirs])
                pairs = statistics.median(x / y for x, y in zip(times[mine], times[theirs]))
                print("%s: areq median %.3f s (min %.3f, max %.3f), compare median %.3f s (min %.3f,"
                      " max %.3f), areq/compare %.3f, median of the runs' ratios %.3f"
                      % (what, m, min(times[mine]), max(times[mine]), c, min(times[theirs]),
                         max(times[theirs]), m / c, pairs))
                m, c = statistics.median(cpu[mine]), statistics.median(cpu[theirs])
                print("%s CPU: areq median %.3f s (min %.3f, max %.3f), compare median %.3f s (min %.3f,"
                      " max %.3f), areq/compare %.3f"
                      % (what, m, min(cpu[mine]), max(cpu[mine]), c, min(cpu[theirs]),
                         max(cpu[theirs]), m / c))
        return 0 if ok else 1
    finally:
        ng.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
