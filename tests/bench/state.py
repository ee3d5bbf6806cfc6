#!/usr/bin/env python3
"""state.py: what the crawl-state store (--state, issue 14) costs and saves, on scenario A.

    tests/bench/state.py [--areq PATH] [--reps 5] [--pages 2000] [--links 150]
                         [--changed-every 10] [--open-pages 1000000] [--work DIR] [--out FILE]

On the site of run.py's scenario A (gen_site.py: 2,000 pages of ~74 KB, 150 links each),
served by an nginx of its own on a free loopback port (ETag and Last-Modified on, as nginx
has them by default; an access log that records each answer's status; no open-file cache,
so that a rewritten file is served at once), it times areq -c 100 on the list of pages:

  no state    areq without --state
  first       areq --state FILE, FILE absent (a new store)
  second      areq --state FILE again, the site unchanged: every page is asked for with
              If-None-Match / If-Modified-Since and nginx answers 304 itself

alternated (the order rotates every repetition; each "first" starts from an empty store and
the "second" after it uses that store), and reports medians, the ratios first / no state
(target <= 1.15) and second / first (target <= 0.4), and checks that all three write the same
pairs (compared as sorted lines) and that nginx answered the second runs with 304s only.

Then, once each, untimed unless said:
  unchanged + --changes   a re-run with --changes: the file must be empty
  10% changed             every CHANGED_EVERY-th page file is rewritten with other links (a
                          new mtime and size, so a new ETag); a timed re-run with --changes
                          must list exactly the added and removed pairs of those pages, as
                          the outputs of the runs before and after show them, and its output
                          must equal a run without --state on the changed site
  state size              bytes of FILE (with its -wal) per page after the first run
  the store alone         tests/store_floor (built beside areq, in BUILD/tests) puts the
                          first run's pages (read from its output) into a new store through
                          the store's API, committing as often as a first run does, and
                          closes it: no crawl. Its CPU, as a share of a run without --state,
                          is what the store's writes alone take of the 1.15x allowance
  open a big store        FILE grown to OPEN_PAGES pages (copies of its rows under other
                          URLs, through Python's sqlite3: a hook that knows the store's
                          "page" table, see synthesize_store), then areq --state on a list of
                          one of its pages: wall time and peak RSS, beside the same on the
                          store of PAGES pages (memory must not grow with the store). Needs
                          about OPEN_PAGES x (state bytes per page) of disk; --open-pages 0
                          skips it.

The site is generated once into WORK (run.py's cache, shared) and used through a copy of
hard links, so that the 10% rewrite (new files, renamed into place) leaves the cache intact.
Results go to standard output and to tests/bench/results/state.txt (--out).

When areq has no --state (areq --help does not mention it), it says "areq has no --state" and
exits 2. Needs python3 (stdlib only) and nginx (Debian nginx-light). Loopback only.
"""
import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (run.py's measuring and reporting helpers)


def load_gen_site():
    spec = importlib.util.spec_from_file_location("areq_gen_site", os.path.join(HERE, "gen_site.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def log(msg):
    print("state.py: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- nginx

NGINX_CONF = """\
{user}
worker_processes 2;
worker_rlimit_nofile 65536;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
daemon on;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    default_type application/octet-stream;
    types {{ text/html html htm; text/plain txt; }}
    log_format areq '$request_method\\t$request_uri\\t$status';
    access_log {tmp}/access.log areq;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    etag on;
    if_modified_since exact;
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
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """An nginx of our own: validators on, an access log of statuses, no open-file cache."""

    def __init__(self, root, work):
        nginx = os.environ.get("NGINX", "/usr/sbin/nginx")
        if not os.access(nginx, os.X_OK):
            sys.exit("state.py: nginx is needed (apt-get install nginx-light)")
        self.tmp = os.path.join(work, "state-nginx")
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        self.port = free_port()
        self.log = os.path.join(self.tmp, "access.log")
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, port=self.port, root=root,
                                      user="user root;" if os.getuid() == 0 else ""))
        subprocess.run([nginx, "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")],
                       check=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        log("nginx on 127.0.0.1:%d serving %s" % (self.port, root))

    def reset_log(self):
        open(self.log, "w").close()

    def statuses(self):
        """{status: count} of the requests logged since reset_log()."""
        time.sleep(0.05)  # the last lines
        out = {}
        with open(self.log, encoding="utf-8", errors="replace") as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) == 3:
                    out[p[2]] = out.get(p[2], 0) + 1
        return out

    def stop(self):
        try:
            with open(os.path.join(self.tmp, "nginx.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------------------- areq


def areq_has_state(areq):
    """Whether the binary knows --state (and --changes), from its --help."""
    p = subprocess.run([areq, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, errors="replace")
    return "--state" in p.stdout, "--changes" in p.stdout


def remove_store(path):
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def store_bytes(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def sorted_digest(path):
    """A digest of the file's lines, sorted (pages finish in any order), and their number."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines.sort()
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
        h.update(b"\n")
    return h.hexdigest(), len(lines)


def pairs_by_source(path):
    """{source: set(targets)} of a TSV output (a header line, if any, is left out)."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 2 and p[0].startswith(("http://", "https://")):
                out.setdefault(p[0], set()).add(p[1])
    return out


def read_changes(path):
    """(set of (kind, source, target) for added/removed lines, [other lines])."""
    pairs, other = set(), []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) == 3 and p[0] in ("added", "removed"):
                pairs.add((p[0], p[1], p[2]))
            elif line.strip():
                other.append(line.rstrip("\n"))
    return pairs, other


# ---------------------------------------------------------------------------- the site


def site_copy(src, dst):
    """DST: hard links to SRC's page files (a rewrite replaces a link, never the file)."""
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "p"))
    for name in os.listdir(os.path.join(src, "p")):
        os.link(os.path.join(src, "p", name), os.path.join(dst, "p", name))


def rewrite_pages(site, indices, pages, links, size, seed):
    """Gives each page of `indices` other content: gen_site's page for another seed, written
    to a new file renamed over the link, with an mtime later than the old one."""
    gen = load_gen_site()
    for i in indices:
        path = os.path.join(site, gen.page_path(i))
        old = os.stat(path).st_mtime
        rng = random.Random("changed-%s/%d" % (seed, i))
        html = gen.render_page(rng, i, pages, links, size).encode()
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(html)
        t = max(time.time(), old + 2)
        os.utime(tmp, (t, t))
        os.replace(tmp, path)


# ---------------------------------------------------------------------------- a big store


def synthesize_store(src, dst, n):
    """Copies the store SRC to DST and grows its "page" table to n rows by copying its rows
    under other URLs ("<url>?synthetic=<k>"), in the run that wrote them. A hook: it knows
    only that the store has a table "page" with a column "url", and that the tables it keeps
    apart ("targets", "visit") have a column "page" (src/store/state.c); when the
    schema says otherwise it returns a sentence saying why not, else None. TODO: an areq
    option for this would not depend on the schema."""
    remove_store(dst)
    with sqlite3.connect(src) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst)
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(page)")]
        if "url" not in cols:
            return "the store has no page(url) table: synthesize_store needs updating"
        have = db.execute("SELECT count(*) FROM page").fetchone()[0]
        if have == 0:
            return "the store has no pages to copy"
        db.execute("CREATE TEMP TABLE orig AS SELECT * FROM page")
        # Each page's row (a new id) and, in the tables the store keeps apart (its targets,
        # its visit), the copied row's, under the new id.
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        apart = [t for t in ("targets", "visit") if t in tables] if "id" in cols else []
        others = ", ".join(c for c in cols if c not in ("url", "id"))
        k = 0
        while have < n:
            k += 1
            take = min(n - have, db.execute("SELECT count(*) FROM orig").fetchone()[0])
            db.execute("INSERT INTO page (url, %s) SELECT url || '?synthetic=%d', %s FROM orig "
                       "LIMIT %d" % (others, k, others, take))
            for table in apart:
                rest = ", ".join(r[1] for r in db.execute("PRAGMA table_info(%s)" % table)
                                 if r[1] != "page")
                db.execute("INSERT INTO %s (page, %s) SELECT p.id, %s FROM orig o "
                           "JOIN %s t ON t.page = o.id JOIN page p "
                           "ON p.url = o.url || '?synthetic=%d'"
                           % (table, rest, ", ".join("t." + c for c in rest.split(", ")),
                              table, k))
            have += take
            if k % 50 == 0:
                db.commit()
                log("  synthetic store: %d pages" % have)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as e:
        return "sqlite3: %s" % e
    finally:
        db.close()
    return None


# ---------------------------------------------------------------------------- main


def store_alone(args, output, none_cpu, report, targets):
    """The store's own work for the first run's pages, without the crawl: tests/store_floor
    puts them into a new store through the store's API, commits and closes it. Its CPU,
    against a whole run's without --state, says how much of the 1.15x allowance the
    store's writes alone take on a machine whose cores the crawl keeps busy."""
    tool = os.path.join(os.path.dirname(os.path.dirname(args.areq)), "tests", "store_floor")
    if not os.access(tool, os.X_OK):
        report("  note: no %s: the store-alone row is skipped" % os.path.relpath(tool, ROOT))
        return
    db = os.path.join(args.work, "state-floor.db")
    cpu, wall, line = [], [], ""
    for _ in range(max(3, min(args.reps, 11))):
        remove_store(db)
        r = subprocess.run([tool, output, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            report("  note: store_floor failed: %s" % r.stderr.strip()[-300:])
            return
        line = r.stdout.split()
        f = dict(zip(line[0::2], line[1::2]))
        cpu.append(float(f["cpu_ms"]) / 1000)
        wall.append(float(f["wall_ms"]) / 1000)
    remove_store(db)
    c = statistics.median(cpu)
    share = "%.0f%%" % (100 * c / none_cpu) if none_cpu else "-"
    report("  the store alone (tests/store_floor: the first run's %s pages put, committed %s "
           "times, closed; no crawl), medians of %d: %s s CPU, %s s wall; %s of the CPU of a "
           "run without --state" % (f["pages"], f["commits"], len(cpu), bench.fmt_s(c),
                                    bench.fmt_s(statistics.median(wall)), share))
    targets.append(("the store's own writes alone, CPU vs a run without --state", share,
                    "reported"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 3)[3],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    default_areq = os.path.join(ROOT, "build-release", "src", "areq")
    if not os.path.exists(default_areq):
        default_areq = os.path.join(ROOT, "build", "src", "areq")
    ap.add_argument("--areq", default=default_areq,
                    help="binary (default build-release/src/areq, else build/src/areq)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of the timed runs (default 5)")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--links", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", "-c", type=int, default=100, help="areq -c (default 100)")
    ap.add_argument("--changed-every", type=int, default=10,
                    help="rewrite every N-th page for the changed re-run (default 10: 10%%)")
    ap.add_argument("--open-pages", type=int, default=1000000,
                    help="pages of the store to open (default 1,000,000; 0: skip that step)")
    ap.add_argument("--timeout", type=float, default=300, help="limit for one run, seconds")
    ap.add_argument("--work", default="/tmp/areq-bench", help="scratch directory (default /tmp/areq-bench)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "state.txt"))
    args = ap.parse_args()
    args.areq = os.path.abspath(args.areq)
    if not os.access(args.areq, os.X_OK):
        sys.exit("state.py: %s: not built (meson setup build-release --buildtype=release && "
                 "ninja -C build-release)" % args.areq)
    has_state, has_changes = areq_has_state(args.areq)
    if not has_state:
        print("state.py: areq has no --state (%s --help does not mention it): nothing to measure"
              % args.areq, file=sys.stderr)
        return 2
    os.makedirs(args.work, exist_ok=True)

    report = bench.Report()
    cpu = "-"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "-")
    except OSError:
        pass
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip() or "-"
    version = subprocess.run([args.areq, "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
    report("areq crawl-state benchmark (issue 14), %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    report("machine: %d CPUs (%s), Linux %s" % (os.cpu_count(), cpu, platform.release()))
    report("areq: %s (%s, git %s)" % (version, os.path.relpath(args.areq, ROOT), git))
    load = os.getloadavg()[0]
    report("load average at start: %.2f%s" % (load, "  (other work is running: expect noise)" if load > 0.5 else ""))

    cache, meta = bench.ensure_site(args.work, args.pages, args.links, args.seed)
    site = os.path.join(args.work, "state-site")
    site_copy(cache, site)
    ng = Nginx(site, args.work)
    targets = []
    try:
        urls = ["http://127.0.0.1:%d/p/%05d.html" % (ng.port, i) for i in range(args.pages)]
        ulist = bench.write_list(os.path.join(args.work, "state-urls.txt"), urls)
        store = os.path.join(args.work, "state.db")
        outs = {k: os.path.join(args.work, "state-out-%s.tsv" % k)
                for k in ("none", "first", "second", "changes", "changed", "changed-none", "open")}
        err = os.path.join(args.work, "state-areq.err")
        base = [args.areq, "-c", str(args.concurrency), "-q", "--no-progress"]

        def cmd(out, state=True, extra=()):
            return base + (["--state", store] if state else []) + list(extra) + ["-o", out, ulist]

        def run(name, argv):
            r = bench.measure(argv, args.timeout, stderr=err)
            if r.note is None and r.rc != 0:
                r.note = "exit status %d: %s" % (r.rc, tail(err))
            return r

        # ---- timed: no state, first, second, alternated
        entries = ["none", "pair"]  # a pair: "first" on a new store, then "second" on it
        runs = {"none": [], "first": [], "second": []}
        digests = {}
        second_statuses = {}
        log("timed runs: %d pages of %.1f KB, -c %d, %d repetitions"
            % (args.pages, meta["bytes"] / args.pages / 1000, args.concurrency, args.reps))
        for rep in range(args.reps):
            k = rep % len(entries)
            for name in entries[k:] + entries[:k]:
                if name == "none":
                    steps = [("none", cmd(outs["none"], state=False))]
                else:
                    remove_store(store)
                    steps = [("first", cmd(outs["first"])), ("second", cmd(outs["second"]))]
                for step, argv in steps:
                    ng.reset_log()
                    r = run(step, argv)
                    st = ng.statuses()
                    if r.note is None:
                        d = sorted_digest(outs[step])
                        digests.setdefault(step, set()).add(d)
                    if step == "second":
                        for s, n in st.items():
                            second_statuses[s] = second_statuses.get(s, 0) + n
                    runs[step].append(r)
                    log("  rep %d %-6s %s s, %s MiB, rc %d, nginx %s%s" % (
                        rep + 1, step, bench.fmt_s(r.wall), bench.fmt_mib(r.rss_kb), r.rc,
                        json.dumps(st, sort_keys=True), " [%s]" % r.note if r.note else ""))
        stats = {k: bench.summarize(v) for k, v in runs.items()}
        size_after_first = store_bytes(store)  # the last "second" ran on the last "first"'s store
        rows = []
        for k, label in (("none", "areq (no --state)"), ("first", "areq --state (new store)"),
                         ("second", "areq --state (unchanged: 304s)")):
            s = stats[k]
            rows.append([label, "%d/%d" % (s["n"], s["n"] + s["bad"]), bench.fmt_s(s["wall"]),
                         bench.fmt_mib(s["rss"]), bench.fmt_s(s["cpu"]),
                         bench.fmt_ratio(s["wall"], stats["none"]["wall"]),
                         bench.fmt_ratio(s["wall"], stats["first"]["wall"])])
        report.table(["scenario A: %d pages, -c %d" % (args.pages, args.concurrency), "runs", "wall s",
                      "RSS MiB", "CPU s", "vs none", "vs first"], rows,
                     "Timed runs (alternated); medians of %d" % args.reps)
        for s in stats.values():
            for n in s["notes"]:
                report("  note: %s" % n)
        all_digests = set().union(*digests.values()) if digests else set()
        same = len(all_digests) == 1 and all(digests.get(k) for k in ("none", "first", "second"))
        lines = next(iter(all_digests))[1] if all_digests else 0
        report("  pairs: %s (%d lines in each output)" % (
            "the same in every run" if same else "DIFFERENT between runs: %s" % sorted(
                (k, sorted(d[0][:12] for d in v)) for k, v in digests.items()), lines))
        report("  nginx's answers to the second runs: %s" % json.dumps(second_statuses, sort_keys=True))
        f, n, s2 = stats["first"]["wall"], stats["none"]["wall"], stats["second"]["wall"]
        if f and n:
            targets.append(("first run with --state <= 1.15x a run without", "%.2fx" % (f / n),
                            "MET" if f / n <= 1.15 else "MISSED"))
        if f and s2:
            only_304 = set(second_statuses) == {"304"}
            targets.append(("unchanged second run <= 0.4x the first, same pairs, all 304",
                            "%.2fx, %s, %s" % (s2 / f, "same" if same else "DIFFERENT",
                                               "all 304" if only_304 else "not all 304"),
                            "MET" if s2 / f <= 0.4 and same and only_304 else "MISSED"))
        per_page = size_after_first / args.pages
        report("  state: %d bytes for %d pages: %.0f bytes a page" % (size_after_first, args.pages, per_page))
        targets.append(("state size per page", "%.0f B" % per_page, "reported"))
        store_alone(args, outs["first"], stats["none"]["cpu"], report, targets)

        # ---- unchanged re-run with --changes: an empty file
        changes = os.path.join(args.work, "state-changes.tsv")
        if has_changes:
            r = run("changes", cmd(outs["changes"], extra=["--changes", changes]))
            size = os.path.getsize(changes) if os.path.exists(changes) else -1
            ok = r.note is None and size == 0
            report("  unchanged re-run with --changes: %s s, changes file %s" % (
                bench.fmt_s(r.wall), "empty" if size == 0 else "MISSING" if size < 0 else
                "%d bytes: %s" % (size, tail(changes, 300))))
            targets.append(("unchanged re-run: empty --changes file", "%d bytes" % max(size, 0),
                            "MET" if ok else "MISSED"))
        else:
            report("  note: areq has no --changes: the changes checks are skipped")

        # ---- 10% changed
        chosen = [i for i in range(args.pages) if i % args.changed_every == 0]
        log("rewriting %d pages (every %d-th)" % (len(chosen), args.changed_every))
        before = pairs_by_source(outs["second"])
        rewrite_pages(site, chosen, args.pages, args.links, meta.get("size", 74000), args.seed)
        extra = ["--changes", changes] if has_changes else []
        ng.reset_log()
        r = run("changed", cmd(outs["changed"], extra=extra))
        st = ng.statuses()
        report("")
        report("%d of %d pages changed (every %d-th): re-run %s s (%s of the first), nginx %s%s" % (
            len(chosen), args.pages, args.changed_every, bench.fmt_s(r.wall),
            bench.fmt_ratio(r.wall, stats["first"]["wall"]), json.dumps(st, sort_keys=True),
            " [%s]" % r.note if r.note else ""))
        r_none = run("changed-none", cmd(outs["changed-none"], state=False))
        same_as_fresh = r.note is None and r_none.note is None and \
            sorted_digest(outs["changed"]) == sorted_digest(outs["changed-none"])
        report("  output equals a run without --state on the changed site: %s" %
               ("yes" if same_as_fresh else "NO"))
        targets.append(("changed re-run writes what a fresh run writes", "", "MET" if same_as_fresh else "MISSED"))
        if has_changes and r.note is None:
            after = pairs_by_source(outs["changed"])
            want = set()
            for src in set(before) | set(after):
                old, new = before.get(src, set()), after.get(src, set())
                want |= {("added", src, t) for t in new - old}
                want |= {("removed", src, t) for t in old - new}
            got, other = read_changes(changes)
            want_sources = {urls[i] for i in chosen}
            touched = {p[1] for p in want}
            report("  expected: %d added, %d removed pairs, on %d pages (%s the rewritten ones)" % (
                sum(p[0] == "added" for p in want), sum(p[0] == "removed" for p in want), len(touched),
                "exactly" if touched == want_sources else "NOT only"))
            report("  --changes: %d added, %d removed; missing %d, extra %d; %d other lines%s" % (
                sum(p[0] == "added" for p in got), sum(p[0] == "removed" for p in got),
                len(want - got), len(got - want), len(other),
                (": " + "; ".join(other[:3])) if other else ""))
            for p in sorted(want - got)[:3]:
                report("    missing: %s" % "\t".join(p))
            for p in sorted(got - want)[:3]:
                report("    extra:   %s" % "\t".join(p))
            exact = got == want and touched == want_sources
            targets.append(("10% changed: --changes lists exactly their added/removed pairs",
                            "%d lines" % len(got), "MET" if exact else "MISSED"))

        # ---- opening a big store
        if args.open_pages > 0:
            open_store(args, report, targets, store, urls, outs["open"], err, base, per_page)
        else:
            report("")
            report("opening a big store: skipped (--open-pages 0)")
    finally:
        ng.stop()
    report.table(["target (issue 14)", "measured", "verdict"], [list(t) for t in targets], "Targets")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(report.lines) + "\n")
    log("written to %s" % args.out)
    return 0


def open_store(args, report, targets, store, urls, out, err, base, per_page):
    """Times areq --state on a one-page list with the store of the run, then with the store
    grown to --open-pages pages."""
    report("")
    need = args.open_pages * per_page * 1.5
    free = shutil.disk_usage(args.work).free
    if need > free:
        report("opening a store of %d pages: skipped, it needs about %.1f GB and %s has %.1f GB free" % (
            args.open_pages, need / 1e9, args.work, free / 1e9))
        return
    one = bench.write_list(os.path.join(args.work, "state-one.txt"), urls[1:2])
    big = os.path.join(args.work, "state-big.db")
    log("building a store of %d pages (about %.1f GB)" % (args.open_pages, args.open_pages * per_page / 1e9))
    t0 = time.monotonic()
    why = synthesize_store(store, big, args.open_pages)
    if why is not None:
        report("opening a store of %d pages: not measured: %s" % (args.open_pages, why))
        remove_store(big)
        return
    log("  built in %.0f s" % (time.monotonic() - t0))
    rows = []
    for label, path in (("%d pages" % args.pages, store), ("%d pages" % args.open_pages, big)):
        walls, rss = [], []
        for _ in range(3):
            r = bench.measure(base + ["--state", path, "-o", out, one], args.timeout, stderr=err)
            if r.rc != 0:
                report("  %s: exit status %d: %s" % (label, r.rc, tail(err)))
                break
            walls.append(r.wall)
            rss.append(r.rss_kb)
        rows.append([label, "%.1f" % (store_bytes(path) / 1e6), bench.fmt_s(bench.med(walls)),
                     bench.fmt_mib(bench.med(rss))])
    report.table(["store", "MB", "wall s", "RSS MiB"], rows,
                 "Opening a store: areq --state on a list of one of its pages; medians of 3")
    if len(rows) == 2 and rows[1][2] != "-":
        targets.append(("open a store of %d pages (one-page run)" % args.open_pages,
                        "%s s, %s MiB (vs %s MiB)" % (rows[1][2], rows[1][3], rows[0][3]), "reported"))
    remove_store(big)


def tail(path, n=200):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-n:].strip().replace("\n", " | ")
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
