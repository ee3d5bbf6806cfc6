#!/usr/bin/env python3
"""save.py: times areq --save beside curl -Z and wget2 saving the same bodies, on loopback
(issue 15).

    tests/bench/save.py [S] [I] [L] [--reps N] [--areq PATH] [--big-gib G] ...

Scenarios (default: all three):
  S  2,000 pages of ~74 KB from nginx saved under a directory: areq -c 100 --save DIR (also
     extracting and writing the ~300,000 pairs), areq --save DIR -o /dev/null (fetch and
     save only, as the others do), curl -Z --parallel-max 100 --create-dirs
     --output-dir DIR (fetch and save only), wget2 --max-threads=100 -x -P DIR -i LIST.
  I  10,000 small images (2 KB, image/png) from delay_server.py at 1 s latency, areq
     -c 10000, with --save DIR and without (without, each body is refused at its first byte).
  L  one body of --big-gib GiB (default 4) served by nginx from a sparse file, areq
     --max-size 0 --save DIR, beside curl -o FILE: wall time and peak RSS.

--save-root puts the saved trees of S and I elsewhere, e.g. on a tmpfs, which leaves the
tools' own costs when the disk is busy. Every run starts with an empty directory (removed
outside the timed part), and a run that
did not save every file is reported as broken. Tools alternate in a rotating order; the
tables show medians of wall time and peak RSS (run.py's measure()) and ratios. Results go to standard
output and to tests/bench/results/save.txt (--out). Stdlib only; reuses run.py's helpers.
Only loopback addresses are used.
"""
import argparse
import datetime
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (tests/bench/run.py: measuring, servers, sites, tables)


def count_files(d):
    return sum(len(fs) for _, _, fs in os.walk(d))


GRAVES = []


def fresh(d):
    """An empty place for the next run. The old tree is moved aside, not deleted: ext4
    allocating inodes right after thousands were freed scans past them (perf: 40% of a
    run's samples in the kernel's recently_deleted()), which would charge one tool for
    the last one's files. bury() deletes them between scenarios."""
    if os.path.exists(d):
        grave = "%s.old-%d" % (d, len(GRAVES))
        os.rename(d, grave)
        GRAVES.append(grave)


def bury():
    while GRAVES:
        shutil.rmtree(GRAVES.pop(), ignore_errors=True)


def rotate(entries, reps, timeout, before, check):
    """entries: [(name, cmd, kwargs)]; each rep runs them all, in a rotating order, with
    before(name) untimed ahead of each run and check(name, run) after it."""
    results = {e[0]: [] for e in entries}
    for rep in range(reps):
        k = rep % len(entries)
        for name, cmd, kw in entries[k:] + entries[:k]:
            before(name)
            r = bench.measure(cmd, timeout, **kw)
            if r.note is None:
                check(name, r)
            if r.note is None and r.rc != 0:
                r.note = "exit status %d" % r.rc
            results[name].append(r)
            bench.log("  %-34s rep %d: %s s, %s MiB, rc %d%s" % (
                name, rep + 1, bench.fmt_s(r.wall), bench.fmt_mib(r.rss_kb), r.rc,
                " [%s]" % r.note if r.note else ""))
    return {k: bench.summarize(v) for k, v in results.items()}


def table(report, title, head, stats, base):
    rows = []
    base_wall = stats.get(base, {}).get("wall")
    for name, s in stats.items():
        rows.append([name, "%d/%d" % (s["n"], s["n"] + s["bad"]), bench.fmt_s(s["wall"]),
                     bench.fmt_mib(s["rss"]), bench.fmt_s(s["cpu"]),
                     bench.fmt_ratio(s["wall"], base_wall)])
    report.table([head, "runs", "wall s", "RSS MiB", "CPU s", "vs " + base.split(" ")[0]],
                 rows, title)
    for s in stats.values():
        for n in s["notes"]:
            report("  note: %s" % n)


def scenario_s(args, report, tools, servers, targets):
    site, meta = bench.ensure_site(args.work, args.pages, args.links, args.seed)
    port = servers.nginx(site)
    names = ["p/%05d.html" % i for i in range(args.pages)]
    urls = ["http://127.0.0.1:%d/%s" % (port, n) for n in names]
    ulist = bench.write_list(os.path.join(args.work, "s-urls.txt"), urls)
    ccfg = os.path.join(args.work, "s-curl.cfg")
    with open(ccfg, "w") as f:
        for u, n in zip(urls, names):
            f.write('url = "%s"\noutput = "%s"\n' % (u, n))
    out = os.path.join(args.work, "s-areq-out.tsv")
    root = args.save_root or args.work
    dirs = {"areq": os.path.join(root, "s-areq"), "curl": os.path.join(root, "s-curl"),
            "wget2": os.path.join(root, "s-wget2"), "areq-only": os.path.join(root, "s-areq-only")}
    expected_pairs = meta["expected_pairs"] + 1
    entries = [("areq -c 100 --save (+ pairs)",
                [tools.areq, "-c", "100", "-q", "--no-progress", "-o", out, "--save", dirs["areq"],
                 ulist], {"stderr": os.path.join(args.work, "s-areq.err")}),
               # the same job as curl's and wget2's: fetch and save, no pairs, no scan
               ("areq-only -c 100 --save -o /dev/null",
                [tools.areq, "-c", "100", "-q", "--no-progress", "-o", "/dev/null", "--save",
                 dirs["areq-only"], ulist], {})]
    if tools.curl:
        entries.append(("curl -Z --parallel-max 100 --output-dir",
                        [tools.curl, "-Z", "--parallel-max", "100", "-s", "--no-progress-meter",
                         "--create-dirs", "--output-dir", dirs["curl"], "-K", ccfg], {}))
    if tools.wget2:
        entries.append(("wget2 --max-threads=100 -x",
                        [tools.wget2, "-q", "--max-threads=100", "--tries=1", "--timeout=60",
                         "-x", "-P", dirs["wget2"], "-i", ulist], {}))

    def before(name):
        fresh(dirs[name.split(" ")[0]])

    def check(name, r):
        d = dirs[name.split(" ")[0]]
        n = count_files(d)
        if n != args.pages:
            r.note = "broken: %d files saved, expected %d" % (n, args.pages)
        if name.startswith("areq "):
            lines = bench.count_lines(out) if os.path.exists(out) else 0
            if abs(lines - expected_pairs) > expected_pairs // 100:
                r.note = "broken: %d lines, expected %d" % (lines, expected_pairs)

    bench.log("scenario S: %d pages, %.1f MB of HTML, saved" % (args.pages, meta["bytes"] / 1e6))
    stats = rotate(entries, args.reps, args.timeout, before, check)
    table(report, "Scenario S: %d pages x %.1f KB from nginx, saved to disk; medians of %d"
          % (args.pages, meta["bytes"] / args.pages / 1000, args.reps),
          "S: save %d pages" % args.pages, stats, "curl -Z --parallel-max 100 --output-dir")
    a = stats[entries[0][0]]["wall"]
    o = stats[entries[1][0]]["wall"]
    c = stats.get("curl -Z --parallel-max 100 --output-dir", {}).get("wall")
    w = stats.get("wget2 --max-threads=100 -x", {}).get("wall")
    if a and c:
        targets.append(("S: areq --save (+ pairs) <= 1.1x curl -Z (fetch + save)",
                        "%.2fx" % (a / c), "MET" if a <= 1.1 * c else "MISSED"))
    if o and c:
        targets.append(("S: areq --save -o /dev/null (fetch + save) <= 1.1x curl -Z",
                        "%.2fx" % (o / c), "MET" if o <= 1.1 * c else "MISSED"))
    if a and w:
        targets.append(("S: areq --save (+ pairs) faster than wget2 -x", "%.2fx" % (a / w),
                        "MET" if a < w else "MISSED"))
    if o and w:
        targets.append(("S: areq --save -o /dev/null faster than wget2 -x", "%.2fx" % (o / w),
                        "MET" if o < w else "MISSED"))
    for d in dirs.values():
        fresh(d)
    bury()


def scenario_i(args, report, tools, servers, targets):
    n = args.images
    port = servers.delay_server(1.0, args.server_workers)
    urls = ["http://127.0.0.1:%d/i/%d.png" % (port, i) for i in range(n)]
    ulist = bench.write_list(os.path.join(args.work, "i-urls.txt"), urls)
    d = os.path.join(args.save_root or args.work, "i-areq")
    common = [tools.areq, "-c", str(n), "-q", "--no-progress", "-o",
              os.path.join(args.work, "i-out.tsv")]
    entries = [("areq -c %d --save" % n, common + ["--save", d, ulist],
                {"stderr": os.path.join(args.work, "i-save.err")}),
               ("areq -c %d (no --save)" % n, common + [ulist],
                {"stderr": os.path.join(args.work, "i-plain.err")})]

    def before(name):
        fresh(d)

    def check(name, r):
        if "--save" in name.split("(")[0] and count_files(d) != n:
            r.note = "broken: %d files saved, expected %d" % (count_files(d), n)

    bench.log("scenario I: %d images at 1 s latency" % n)
    stats = rotate(entries, args.reps, args.timeout, before, check)
    table(report, "Scenario I: %d images of 2 KB, 1 s latency (delay_server.py); medians of %d"
          % (n, args.reps), "I: %d images" % n, stats, entries[1][0])
    s, p = stats[entries[0][0]]["wall"], stats[entries[1][0]]["wall"]
    if s and p:
        targets.append(("I: with --save within 1.3x of without", "%.2fx" % (s / p),
                        "MET" if s <= 1.3 * p else "MISSED"))
    fresh(d)
    bury()


def scenario_l(args, report, tools, servers, targets):
    site, _ = bench.ensure_site(args.work, args.pages, args.links, args.seed)
    size = int(args.big_gib * (1 << 30))
    big = os.path.join(site, "big.bin")
    if not os.path.exists(big) or os.path.getsize(big) != size:
        with open(big, "wb") as f:
            f.truncate(size)  # sparse: nginx sends zeros
    port = servers.nginx(site)
    url = "http://127.0.0.1:%d/big.bin" % port
    d = os.path.join(args.work, "l-areq")
    cfile = os.path.join(args.work, "l-curl.bin")
    entries = [("areq --max-size 0 --save", [tools.areq, "-q", "--no-progress", "--max-size", "0",
                                            "-o", "/dev/null", "--save", d, url], {})]
    if tools.curl:
        entries.append(("curl -o FILE", [tools.curl, "-s", "-o", cfile, url], {}))

    def before(name):
        shutil.rmtree(d, ignore_errors=True)  # one file: nothing for ext4 to scan past
        if os.path.exists(cfile):
            os.unlink(cfile)

    def check(name, r):
        got = count_files(d) if name.startswith("areq") else int(os.path.exists(cfile))
        path = os.path.join(d, "127.0.0.1:%d" % port, "big.bin") if name.startswith("areq") else cfile
        if got != 1 or os.path.getsize(path) != size:
            r.note = "broken: the body was not saved whole"

    bench.log("scenario L: one body of %g GiB" % args.big_gib)
    stats = rotate(entries, args.reps_l, args.timeout, before, check)
    table(report, "Scenario L: one %g GiB body saved (--max-size 0); medians of %d"
          % (args.big_gib, args.reps_l), "L: %g GiB" % args.big_gib, stats, "curl -o FILE")
    rss = stats[entries[0][0]]["rss"]
    if rss:
        targets.append(("L: peak RSS < 64 MiB for a %g GiB body" % args.big_gib,
                        bench.fmt_mib(rss) + " MiB", "MET" if rss < 64 * 1024 else "MISSED"))
    before(None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 3)[3],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", metavar="S|I|L", help="scenarios to run (default all)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions in S and I (default 5)")
    ap.add_argument("--reps-l", type=int, default=3, help="repetitions in L (default 3)")
    default_areq = os.path.join(ROOT, "build-release", "src", "areq")
    if not os.path.exists(default_areq):
        default_areq = os.path.join(ROOT, "build", "src", "areq")
    ap.add_argument("--areq", default=default_areq, help="binary (default build-release/src/areq)")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--links", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--big-gib", type=float, default=4)
    ap.add_argument("--server-workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--work", default="/tmp/areq-bench-save",
                    help="scratch directory (not run.py's: both may run)")
    ap.add_argument("--save-root", help="where S and I save (default --work; a tmpfs such as "
                    "/dev/shm/x takes the disk out of the comparison)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "save.txt"))
    args = ap.parse_args()
    scen = [s.upper() for s in args.scenarios] or ["S", "I", "L"]
    for s in scen:
        if s not in ("S", "I", "L"):
            ap.error("unknown scenario %r" % s)
    args.areq = os.path.abspath(args.areq)
    if not os.access(args.areq, os.X_OK):
        sys.exit("save.py: %s: not built" % args.areq)
    os.makedirs(args.work, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass

    # run.py's Tools wants its own options; give it what it reads.
    tools = bench.Tools(argparse.Namespace(areq=args.areq, reference="", floor="", no_peers=False))
    report = bench.Report()
    servers = bench.Servers(args.work)

    def on_signal(sig, _frame):
        servers.stop()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    report("areq --save benchmarks, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    report("machine: %d CPUs, Linux %s; load average at start %.2f" % (
        os.cpu_count(), platform.release(), os.getloadavg()[0]))
    report("areq: %s (%s, git %s)" % (tools.version("areq"), os.path.relpath(args.areq, ROOT), git))
    report("peers: %s; %s; %s" % (tools.version("curl"), tools.version("wget2"), tools.version("nginx")))
    for what, d in (("scratch", args.work), ("saved under", args.save_root)):
        if d:
            os.makedirs(d, exist_ok=True)
            fs = subprocess.run(["df", "-h", "--output=fstype,avail", d], stdout=subprocess.PIPE,
                                text=True).stdout.split("\n")[1].strip()
            report("%s: %s (%s)" % (what, d, fs))
    for n in tools.notes:
        if "reference" not in n:
            report("note: " + n)
    targets = []
    try:
        for s in scen:
            {"S": scenario_s, "I": scenario_i, "L": scenario_l}[s](args, report, tools, servers, targets)
    finally:
        servers.stop()
    if targets:
        report.table(["target", "measured", "verdict"], [list(t) for t in targets], "Targets")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(report.lines) + "\n")
    bench.log("written to %s" % args.out)


if __name__ == "__main__":
    main()
