#!/usr/bin/env python3
"""run.py: times areq beside curl -Z, wget2 and the reference program, on loopback.

    tests/bench/run.py [A] [B] [C] [D] [--quick] [--reps N] [--areq PATH] [--compare PATH]
                       [--no-peers] ...

Scenarios (default: all four):
  A  2,000 pages of ~74 KB with 150 links each, served by nginx: areq does the whole job
     (fetch, extract, resolve, write ~300,000 pairs) at -c 100; curl -Z --parallel-max 100 and
     wget2 --max-threads=100 only fetch; the reference program (once; --no-ref skips it).
  B  10,000 URLs answered after 1 s by delay_server.py: areq -c 10000, curl -Z
     --parallel-max 300 (its cap), wget2 --max-threads=10000; the reference with --ref-b (~101 s);
     and floor_client (--floor), raw epoll sockets without HTTP: the floor for any client.
  C  areq scaling: 1k/10k/100k URLs at latency 0 (nginx, small page, -c 100) and 1 s
     (delay server, -c 10000); -c 1/100/1000/10000 on a fixed list (small pages, and the
     2,000-page site).
  D  streaming: 10k, 100k and 1,000,000 distinct URLs to a refused loopback port (--d-target
     nginx: to nginx's small page), -c 1000 --retries 0: peak RSS and bytes per URL beyond the
     10k baseline.

Each measurement runs REPS times (default 5; the tools alternate, in a rotating order) and the
tables show medians of wall time and peak RSS (GNU time's, see measure()) and ratios to curl -Z.
areq's output is counted in A and B, and a run with the wrong number of lines is reported as
broken instead of timed. Every run has a time limit (--timeout, default 300 s). Results go to
standard output and to tests/bench/results/latest.txt (--out to change).

--compare PATH adds a second areq build to A and B (rows named "compare: ..."), run with the
same arguments in the same rotation, so that each repetition times both builds under the same
load; a table per scenario then gives both builds' medians, minimum and maximum of wall and CPU
time and peak RSS, the ratio --areq/--compare of the medians (above 1: --areq is slower) and
the median of the per-repetition ratios (each pair ran back to back, under the same load). --no-peers leaves
out curl, wget2, the floor client and the reference program, when only areq is measured.

Needs: python3 (stdlib only), nginx (Debian nginx-light), curl, wget2; the reference program
needs /usr/bin/python3 with python3-aiohttp and python3-aiofiles. Tools that are missing are
skipped with a note. Only loopback addresses are used.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------------------- output


class Report:
    def __init__(self):
        self.lines = []

    def __call__(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header, rows, title=None):
        if title:
            self("")
            self(title)
        cols = [header] + rows
        widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
        fmt = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                  for i, (c, w) in enumerate(zip(r, widths)))
        self(fmt(header))
        self("  ".join("-" * w for w in widths))
        for r in rows:
            self(fmt(r))


def log(msg):
    print("run.py: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- measuring


def listen_overflows():
    """The kernel's TcpExt ListenOverflows counter (a dropped handshake costs a client 1 s+)."""
    try:
        with open("/proc/net/netstat") as f:
            rows = [l.split() for l in f if l.startswith("TcpExt:")]
        names, values = rows[0], rows[1]
        return int(values[names.index("ListenOverflows")])
    except (OSError, ValueError, IndexError):
        return 0


def proc_cpu(pids):
    """CPU seconds (user + system) used so far by these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def clean_env():
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[k]
    return env


class Run:
    __slots__ = ("wall", "rss_kb", "cpu", "rc", "timed_out", "overflows", "srv_cpu", "note", "load")

    def ok(self):
        return not self.timed_out and self.note is None


# A child's ru_maxrss counts the memory of the process it was forked from, up to its exec:
# Python forks (vfork) its children, so a bench that holds 80 MB (state.py, after comparing
# outputs) reported 80 MB for every tool, /bin/true included (and 14 MB at the least). GNU
# time, started in between, forks the tool from its own small process and reports the
# tool's peak alone; without it the figure is ru_maxrss, and the table says so.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_SOURCE = "GNU time's %M" if GNU_TIME else "os.wait4's ru_maxrss, which counts the bench's own memory too: install Debian's time package"


def measure(cmd, timeout, cwd=None, stdout=None, stderr=None, server_pids=()):
    """Runs cmd; returns a Run with wall seconds, peak RSS (KiB), CPU seconds, exit status."""
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    err = open(stderr, "wb") if stderr else subprocess.DEVNULL
    rss_file = None
    if GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="areq-bench-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + list(cmd)
    ov0 = listen_overflows()
    s0 = proc_cpu(server_pids)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                         env=clean_env(), start_new_session=True)
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.start()
    while True:
        try:
            _, status, ru = os.wait4(p.pid, 0)
            break
        except InterruptedError:
            continue
    wall = time.monotonic() - t0
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    for f in (out, err):
        if f is not subprocess.DEVNULL:
            f.close()
    r = Run()
    r.wall = wall
    r.rss_kb = ru.ru_maxrss
    if rss_file is not None:
        try:
            with open(rss_file) as f:
                last = f.read().split()
            # GNU time writes "Command exited with non-zero status N" first, then %M.
            if last and last[-1].isdigit():
                r.rss_kb = int(last[-1])
        finally:
            os.unlink(rss_file)
    r.cpu = ru.ru_utime + ru.ru_stime
    r.rc = p.returncode
    r.timed_out = bool(timed_out)
    r.overflows = listen_overflows() - ov0
    r.srv_cpu = proc_cpu(server_pids) - s0
    r.note = "timed out after %ds" % timeout if timed_out else None
    r.load = os.getloadavg()[0]
    return r


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += b.count(b"\n")


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "-"
    return "%.3f" % x if x < 10 else "%.2f" % x if x < 100 else "%.1f" % x


def fmt_mib(kb):
    return "-" if kb is None else "%.1f" % (kb / 1024)


def fmt_ratio(a, b):
    return "-" if a is None or not b else "%.2fx" % (a / b)


# ---------------------------------------------------------------------------- peers


class Servers:
    """nginx (through nginx.sh) and delay_server.py, stopped at exit."""

    def __init__(self, work):
        self.work = work
        self.nginx_port = None
        self.delay = {}  # delay -> (port, Popen)
        self.nginx_env = dict(os.environ, AREQ_BENCH_TMP=os.path.join(work, "nginx"))

    def nginx(self, site):
        if self.nginx_port is None:
            if not os.path.exists("/usr/sbin/nginx") and not os.environ.get("NGINX"):
                sys.exit("run.py: nginx is needed (apt-get install nginx-light)")
            subprocess.run([os.path.join(HERE, "nginx.sh"), "stop"], env=self.nginx_env)
            out = subprocess.run([os.path.join(HERE, "nginx.sh"), "start", site], env=self.nginx_env,
                                 stdout=subprocess.PIPE, check=True, text=True).stdout
            self.nginx_port = int(out.split()[-1])
            log("nginx on 127.0.0.1:%d serving %s" % (self.nginx_port, site))
        return self.nginx_port

    def nginx_pids(self):
        try:
            with open(os.path.join(self.work, "nginx", "nginx.pid")) as f:
                master = int(f.read())
            kids = subprocess.run(["pgrep", "-P", str(master)], stdout=subprocess.PIPE, text=True).stdout
            return [master] + [int(x) for x in kids.split()]
        except (OSError, ValueError):
            return []

    def delay_server(self, delay, workers=1):
        if delay not in self.delay:
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "delay_server.py"), "--delay", str(delay),
                                  "--workers", str(workers)], stdout=subprocess.PIPE, text=True,
                                 env=clean_env())
            port = int(p.stdout.readline())
            self.delay[delay] = (port, p)
            log("delay_server.py (%gs) on 127.0.0.1:%d" % (delay, port))
        return self.delay[delay][0]

    def delay_pids(self, delay):
        if delay not in self.delay:
            return []
        pid = self.delay[delay][1].pid
        kids = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True).stdout
        return [pid] + [int(x) for x in kids.split()]

    def stop(self):
        for port, p in self.delay.values():
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.delay = {}
        if self.nginx_port is not None:
            subprocess.run([os.path.join(HERE, "nginx.sh"), "stop"], env=self.nginx_env)
            self.nginx_port = None


# ---------------------------------------------------------------------------- inputs


def ensure_site(work, pages, links, seed):
    site = os.path.join(work, "site-%d-%d-%d" % (pages, links, seed))
    meta = os.path.join(site, "site.json")
    if not os.path.exists(meta):
        log("generating %d pages in %s" % (pages, site))
        subprocess.run([sys.executable, os.path.join(HERE, "gen_site.py"), site, "--pages", str(pages),
                        "--links", str(links), "--seed", str(seed)], check=True)
    with open(meta) as f:
        return site, json.load(f)


def write_list(path, urls):
    with open(path, "w") as f:
        for u in urls:
            f.write(u)
            f.write("\n")
    return path


def write_curl_config(path, urls):
    """curl -K: every URL with its own output = /dev/null (curl's -o binds to one URL)."""
    with open(path, "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    return path


# ---------------------------------------------------------------------------- tools


class Tools:
    def __init__(self, args):
        self.areq = args.areq
        self.curl = shutil.which("curl")
        self.wget2 = shutil.which("wget2")
        self.ref = args.reference if os.path.exists(args.reference) else None
        self.ref_python = "/usr/bin/python3"
        self.floor = args.floor if os.access(args.floor, os.X_OK) else None
        self.notes = []
        if args.no_peers:
            self.curl = self.wget2 = self.ref = self.floor = None
            self.notes.append("peers left out (--no-peers): curl, wget2, floor client, reference program")
            return
        if self.ref:
            ok = subprocess.run([self.ref_python, "-c", "import aiohttp, aiofiles"],
                                stderr=subprocess.DEVNULL).returncode == 0
            if not ok:
                self.notes.append("reference program skipped: apt-get install -y python3-aiohttp python3-aiofiles")
                self.ref = None
        else:
            self.notes.append("reference program not found at %s (--reference)" % args.reference)
        if not self.curl:
            self.notes.append("curl not installed: skipped")
        if not self.wget2:
            self.notes.append("wget2 not installed: skipped")

    def version(self, name):
        try:
            if name == "areq":
                return subprocess.run([self.areq, "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
            if name == "curl" and self.curl:
                return subprocess.run([self.curl, "-V"], stdout=subprocess.PIPE, text=True).stdout.split("\n")[0].split(" (")[0]
            if name == "wget2" and self.wget2:
                return subprocess.run([self.wget2, "--version"], stdout=subprocess.PIPE,
                                      text=True).stdout.split("\n")[0].split(" - ")[0]
            if name == "nginx":
                return subprocess.run(["/usr/sbin/nginx", "-v"], stderr=subprocess.PIPE, text=True).stderr.strip()
        except OSError:
            pass
        return "-"


def run_reference(tools, work, name, urls, timeout):
    """The reference reads urls.txt next to itself and writes foundurls.txt there."""
    d = os.path.join(work, "ref-" + name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(tools.ref, os.path.join(d, "areq.py"))
    write_list(os.path.join(d, "urls.txt"), urls)
    r = measure([tools.ref_python, os.path.join(d, "areq.py")], timeout, cwd=d,
                stderr=os.path.join(d, "stderr.log"))
    r_lines = count_lines(os.path.join(d, "foundurls.txt")) if os.path.exists(os.path.join(d, "foundurls.txt")) else 0
    return r, r_lines


def series(report, entries, reps, timeout, check=None, ok_rcs=(0,)):
    """entries: [(name, cmd, kwargs)]; runs them reps times in rotating order.
    check(name, run) may set run.note to mark a broken run. Returns {name: [Run]}."""
    results = {e[0]: [] for e in entries}
    for rep in range(reps):
        k = rep % len(entries)
        for name, cmd, kw in entries[k:] + entries[:k]:
            r = measure(cmd, timeout, **kw)
            if check and r.note is None:
                check(name, r)
            if r.note is None and r.rc not in ok_rcs:
                r.note = "exit status %d" % r.rc
            results[name].append(r)
            log("  %-28s rep %d: %s s, %s MiB, rc %d, load %.2f%s%s" % (
                name, rep + 1, fmt_s(r.wall), fmt_mib(r.rss_kb), r.rc, r.load,
                ", listen overflows %d" % r.overflows if r.overflows else "",
                " [%s]" % r.note if r.note else ""))
    return results


def summarize(runs):
    good = [r for r in runs if r.ok()]
    return {
        "n": len(good), "bad": len(runs) - len(good),
        "wall": med([r.wall for r in good]), "rss": med([r.rss_kb for r in good]),
        "cpu": med([r.cpu for r in good]), "ovf": sum(r.overflows for r in runs),
        "srv": med([r.srv_cpu for r in good]),
        "notes": sorted(set(r.note for r in runs if r.note)),
    }


COMPARE = "compare: "


def compare_entry(args, entry, out, out_compare):
    """The --compare build's copy of areq's entry: same arguments, its own output file."""
    name, cmd, kw = entry
    cmd = [args.compare] + [out_compare if c == out else c for c in cmd[1:]]
    kw = {k: (v + ".compare" if k in ("stdout", "stderr") else v) for k, v in kw.items()}
    return COMPARE + name, cmd, kw


def compare_table(report, res, name, title):
    """name's runs (--areq) beside those of COMPARE + name (--compare): medians, spreads, ratio."""
    after = [r for r in res[name] if r.ok()]
    before = [r for r in res[COMPARE + name] if r.ok()]
    # repetition i ran both builds back to back: their ratio shares that moment's load
    pairs = [(a, b) for a, b in zip(res[name], res[COMPARE + name]) if a.ok() and b.ok()]
    rows = []
    for label, get, fmt in (("wall s", lambda r: r.wall, fmt_s), ("CPU s", lambda r: r.cpu, fmt_s),
                            ("peak RSS MiB", lambda r: r.rss_kb, fmt_mib)):
        b, a = [get(r) for r in before], [get(r) for r in after]
        mb, ma = med(b), med(a)
        rows.append([label, "%d/%d" % (len(b), len(res[COMPARE + name])), fmt(mb), fmt(min(b) if b else None),
                     fmt(max(b) if b else None), "%d/%d" % (len(a), len(res[name])), fmt(ma),
                     fmt(min(a) if a else None), fmt(max(a) if a else None),
                     "-" if ma is None or not mb else "%.3f" % (ma / mb),
                     "-" if not pairs else "%.3f" % med([get(a) / get(b) for a, b in pairs if get(b)])])
    report.table([name, "compare runs", "median", "min", "max", "areq runs", "median", "min", "max",
                  "areq/compare", "median of pairs"], rows, title)
    loads = [r.load for r in res[name] + res[COMPARE + name]]
    report("  load average (1 min) after each run: median %.2f, min %.2f, max %.2f"
           % (med(loads), min(loads), max(loads)))


# ---------------------------------------------------------------------------- scenarios


def scenario_a(args, report, tools, servers, targets):
    site, meta = ensure_site(args.work, args.pages, args.links, args.seed)
    port = servers.nginx(site)
    urls = ["http://127.0.0.1:%d/p/%05d.html" % (port, i) for i in range(args.pages)]
    ulist = write_list(os.path.join(args.work, "a-urls.txt"), urls)
    ccfg = write_curl_config(os.path.join(args.work, "a-curl.cfg"), urls)
    out = os.path.join(args.work, "a-areq-out.tsv")
    expected = meta["expected_pairs"] + 1  # header
    entries = [("areq -c 100 (whole job)", [tools.areq, "-c", "100", "-q", "--no-progress", "-o", out, ulist],
                {"stderr": os.path.join(args.work, "a-areq.err")})]
    out_compare = out + ".compare"
    if args.compare:
        entries.append(compare_entry(args, entries[0], out, out_compare))
    if tools.curl:
        entries.append(("curl -Z --parallel-max 100", [tools.curl, "-Z", "--parallel-max", "100", "-s", "--no-progress-meter", "-K", ccfg], {}))
    if tools.wget2:
        entries.append(("wget2 --max-threads=100", [tools.wget2, "-q", "--max-threads=100", "--tries=1",
                                                    "--timeout=60", "-O", "/dev/null", "-i", ulist], {}))

    def check(name, r):
        if name.startswith("areq") or name.startswith(COMPARE):
            path = out_compare if name.startswith(COMPARE) else out
            n = count_lines(path) if os.path.exists(path) else 0
            if r.rc != 0 or abs(n - expected) > expected // 100:
                r.note = "broken: exit %d, %d lines, expected %d" % (r.rc, n, expected)

    log("scenario A: %d pages, %.1f MB of HTML" % (args.pages, meta["bytes"] / 1e6))
    res = series(report, entries, args.reps, args.timeout, check)
    ref = None
    if tools.ref and not args.no_ref:
        log("scenario A: the reference program, once")
        ref, ref_lines = run_reference(tools, args.work, "a", urls, args.timeout)
        if ref.note is None and abs(ref_lines - expected) > expected // 100:
            ref.note = "%d lines, expected %d" % (ref_lines, expected)
        log("  reference: %s s, %s MiB%s" % (fmt_s(ref.wall), fmt_mib(ref.rss_kb), " [%s]" % ref.note if ref.note else ""))
    stats = {k: summarize(v) for k, v in res.items()}
    curl_wall = stats.get("curl -Z --parallel-max 100", {}).get("wall")
    rows = []
    for name, s in stats.items():
        rows.append([name, "%d/%d" % (s["n"], s["n"] + s["bad"]), fmt_s(s["wall"]), fmt_mib(s["rss"]),
                     fmt_s(s["cpu"]), fmt_ratio(s["wall"], curl_wall), "%.0f" % (args.pages / s["wall"]) if s["wall"] else "-"])
    if ref is not None:
        rows.append(["reference areq.py (1 run)", "%d/1" % ref.ok(), fmt_s(ref.wall), fmt_mib(ref.rss_kb), fmt_s(ref.cpu),
                     fmt_ratio(ref.wall, curl_wall), "%.0f" % (args.pages / ref.wall)])
    report.table(["A: %d pages x %.1f KB, %d links (nginx)" % (args.pages, meta["bytes"] / args.pages / 1000, args.links),
                  "runs", "wall s", "RSS MiB", "CPU s", "vs curl", "pages/s"], rows,
                 "Scenario A: fetch %d pages (areq: + extract, resolve, write %d pairs); medians of %d" % (
                     args.pages, meta["expected_pairs"], args.reps))
    for s in stats.values():
        for n in s["notes"]:
            report("  note: %s" % n)
    if args.compare:
        compare_table(report, res, "areq -c 100 (whole job)", "Scenario A: --areq %s against --compare %s"
                      % (args.areq, args.compare))
    a = stats["areq -c 100 (whole job)"]
    if a["wall"] and curl_wall:
        ratio = a["wall"] / curl_wall
        targets.append(("A: whole job <= 3x curl -Z fetch (stretch 2x)", "%.2fx" % ratio,
                        "MET (stretch)" if ratio <= 2 else "MET" if ratio <= 3 else "MISSED"))
    if a["cpu"]:
        rate = meta["bytes"] / a["cpu"] / 1e9
        targets.append(("HTML processed per CPU-second, whole job (extraction target 1 GB/s/core)",
                        "%.2f GB/s" % rate, "lower bound; see a profile for extraction alone"))


def scenario_b(args, report, tools, servers, targets):
    n = args.b_urls
    port = servers.delay_server(1.0, args.server_workers)
    urls = ["http://127.0.0.1:%d/b/%d.html" % (port, i) for i in range(n)]
    ulist = write_list(os.path.join(args.work, "b-urls.txt"), urls)
    ccfg = write_curl_config(os.path.join(args.work, "b-curl.cfg"), urls)
    out = os.path.join(args.work, "b-areq-out.tsv")
    expected = n * 5 + 1
    spids = servers.delay_pids(1.0)
    entries = [("areq -c %d" % n, [tools.areq, "-c", str(n), "-q", "--no-progress", "-o", out, ulist],
                {"stderr": os.path.join(args.work, "b-areq.err"), "server_pids": spids})]
    out_compare = out + ".compare"
    if args.compare:
        entries.append(compare_entry(args, entries[0], out, out_compare))
    if tools.curl:
        entries.append(("curl -Z --parallel-max 300", [tools.curl, "-Z", "--parallel-max", "300", "-s", "--no-progress-meter", "-K", ccfg],
                        {"server_pids": spids}))
    if tools.wget2:
        entries.append(("wget2 --max-threads=%d" % n, [tools.wget2, "-q", "--max-threads=%d" % n, "--tries=1",
                                                      "--timeout=60", "-O", "/dev/null", "-i", ulist],
                        {"server_pids": spids}))
    # the least any client can cost here: it writes no pairs, so only its exit status (0: every
    # answer a 2xx) is checked; its own line says when the last request went out
    floor = "floor (raw epoll, no HTTP)"
    floor_out = os.path.join(args.work, "b-floor.out")
    if tools.floor:
        entries.append((floor, [tools.floor, "-c", str(n), ulist],
                        {"stdout": floor_out, "stderr": os.path.join(args.work, "b-floor.err"),
                         "server_pids": spids}))
    elif not args.no_peers:
        log("scenario B: no floor_client at %s (--floor): its row is skipped" % args.floor)

    def check(name, r):
        if name.startswith("areq") or name.startswith(COMPARE):
            path = out_compare if name.startswith(COMPARE) else out
            lines = count_lines(path) if os.path.exists(path) else 0
            if r.rc != 0 or lines != expected:
                r.note = "broken: exit %d, %d lines, expected %d" % (r.rc, lines, expected)
        elif name == floor and os.path.exists(floor_out):
            with open(floor_out) as f:
                log("    " + f.read().strip())

    log("scenario B: %d URLs at 1 s latency" % n)
    res = series(report, entries, args.reps_b or args.reps, args.timeout, check)
    ref = None
    if tools.ref and args.ref_b:
        log("scenario B: the reference program, once (about %d s)" % (n // 100 + 1))
        ref, _ = run_reference(tools, args.work, "b", urls, max(args.timeout, n // 100 + 60))
    stats = {k: summarize(v) for k, v in res.items()}
    curl_wall = stats.get("curl -Z --parallel-max 300", {}).get("wall")
    rows = []
    for name, s in stats.items():
        rows.append([name, "%d/%d" % (s["n"], s["n"] + s["bad"]), fmt_s(s["wall"]), fmt_mib(s["rss"]), fmt_s(s["cpu"]),
                     fmt_s(s["srv"]), str(s["ovf"]), fmt_ratio(s["wall"], curl_wall)])
    if ref is not None:
        rows.append(["reference areq.py (1 run)", "%d/1" % ref.ok(), fmt_s(ref.wall), fmt_mib(ref.rss_kb),
                     fmt_s(ref.cpu), "-", str(ref.overflows), fmt_ratio(ref.wall, curl_wall)])
    report.table(["B: %d URLs, 1 s latency" % n, "runs", "wall s", "RSS MiB", "CPU s", "server CPU s",
                  "listen ovf", "vs curl"], rows,
                 "Scenario B: %d URLs that each take 1 s to answer (delay_server.py); medians of %d" % (
                     n, args.reps_b or args.reps))
    for s in stats.values():
        for note in s["notes"]:
            report("  note: %s" % note)
    if args.compare:
        compare_table(report, res, "areq -c %d" % n, "Scenario B: --areq %s against --compare %s"
                      % (args.areq, args.compare))
    if any(s["ovf"] for s in stats.values()):
        report("  note: 'listen ovf' counts handshakes the kernel dropped (accept queue full; somaxconn %s);"
               " each costs that client a retransmission (1 s or more)" % somaxconn())
    a = stats["areq -c %d" % n]
    if a["wall"] and n == 10000:
        targets.append(("B: 10,000 URLs at 1 s, -c 10000: wall <= 1.5 s", fmt_s(a["wall"]) + " s",
                        "MET" if a["wall"] <= 1.5 else "MISSED"))
        targets.append(("B: peak RSS <= 150 MiB (stretch 64 MiB)", fmt_mib(a["rss"]) + " MiB",
                        "MET (stretch)" if a["rss"] <= 64 * 1024 else "MET" if a["rss"] <= 150 * 1024 else "MISSED"))


def scenario_c(args, report, tools, servers, targets):
    site, meta = ensure_site(args.work, args.pages, args.links, args.seed)
    nport = servers.nginx(site)
    dport = servers.delay_server(1.0, args.server_workers)
    sizes = args.c_sizes
    reps = args.reps_c or args.reps
    rows = []
    for latency, port, conc in ((0, nport, 100), (1, dport, 10000)):
        for n in sizes:
            if latency and n * 1.0 / conc > 60:
                continue
            urls = ("http://127.0.0.1:%d/s/%d.html?k=%d" % (port, i, i % 97) for i in range(n))
            ulist = write_list(os.path.join(args.work, "c-%d-%d.txt" % (latency, n)), urls)
            out = os.path.join(args.work, "c-out.tsv")
            spids = servers.delay_pids(1.0) if latency else servers.nginx_pids()
            log("scenario C: %d URLs, latency %d s, -c %d" % (n, latency, conc))
            res = series(report, [("areq", [tools.areq, "-c", str(conc), "-q", "--no-progress", "-o", out, ulist],
                                   {"server_pids": spids})], reps, args.timeout)
            s = summarize(res["areq"])
            rows.append(["%d s" % latency, str(n), str(conc), "%d/%d" % (s["n"], s["n"] + s["bad"]), fmt_s(s["wall"]),
                         fmt_mib(s["rss"]), fmt_s(s["cpu"]), fmt_s(s["srv"]), str(s["ovf"]),
                         "%.0f" % (n / s["wall"]) if s["wall"] else "-"])
    report.table(["latency", "URLs", "-c", "runs", "wall s", "RSS MiB", "CPU s", "server CPU s", "listen ovf", "URLs/s"],
                 rows, "Scenario C1: areq by list size (latency 0: nginx, 1.7 KB page, 10 links;"
                       " latency 1 s: delay_server.py); medians of %d" % reps)
    # concurrency curves on fixed lists, latency 0
    rows = []
    small_n = args.c_fixed
    small = write_list(os.path.join(args.work, "c-fixed-small.txt"),
                       ("http://127.0.0.1:%d/s/f%d.html" % (nport, i) for i in range(small_n)))
    pages = write_list(os.path.join(args.work, "c-fixed-pages.txt"),
                       ("http://127.0.0.1:%d/p/%05d.html" % (nport, i) for i in range(args.pages)))
    for label, ulist, n in (("%d small pages" % small_n, small, small_n),
                            ("%d pages of %.0f KB" % (args.pages, meta["bytes"] / args.pages / 1000), pages, args.pages)):
        for conc in args.c_conc:
            log("scenario C: %s, -c %d" % (label, conc))
            res = series(report, [("areq", [tools.areq, "-c", str(conc), "-q", "--no-progress", "-o",
                                            os.path.join(args.work, "c-out.tsv"), ulist],
                                   {"server_pids": servers.nginx_pids()})], reps, args.timeout)
            s = summarize(res["areq"])
            rows.append([label, str(conc), "%d/%d" % (s["n"], s["n"] + s["bad"]), fmt_s(s["wall"]), fmt_mib(s["rss"]),
                         fmt_s(s["cpu"]), fmt_s(s["srv"]), "%.0f" % (n / s["wall"]) if s["wall"] else "-"])
    report.table(["list (latency 0, nginx)", "-c", "runs", "wall s", "RSS MiB", "CPU s", "nginx CPU s", "URLs/s"], rows,
                 "Scenario C2: areq by concurrency; medians of %d" % reps)


def somaxconn():
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return f.read().strip()
    except OSError:
        return "?"


def scenario_d(args, report, tools, servers, targets):
    sizes = args.d_sizes
    hold = None
    if args.d_target == "nginx":
        site, _ = ensure_site(args.work, args.pages, args.links, args.seed)
        port = servers.nginx(site)
        base = "http://127.0.0.1:%d/s/" % port
    else:
        # a socket bound but never listening: connections to its port are refused at once,
        # and nothing else can take the port while we hold it
        hold = socket.socket()
        hold.bind(("127.0.0.1", 0))
        port = hold.getsockname()[1]
        base = "http://127.0.0.1:%d/u/" % port
    rows = []
    rss = {}
    reps = args.reps_d
    for n in sizes:
        ulist = os.path.join(args.work, "d-%d.txt" % n)
        write_list(ulist, ("%s%07d?x=%d" % (base, i, i * 7919 % 100003) for i in range(n)))
        size = os.path.getsize(ulist)
        log("scenario D: %d URLs (%.1f MB list) to %s" % (n, size / 1e6, base))
        res = series(report, [("areq", [tools.areq, "-c", "1000", "--retries", "0", "-t", "10", "-q", "--no-progress",
                                        "-o", os.path.join(args.work, "d-out.tsv"), ulist], {})],
                     reps, max(args.timeout, 600), ok_rcs=(0, 1))
        # refused URLs make areq exit 1: expected here
        s = summarize(res["areq"])
        rss[n] = s["rss"]
        rcs = sorted(set(r.rc for r in res["areq"]))
        rows.append([str(n), "%.1f" % (size / 1e6), "%d/%d" % (s["n"], s["n"] + s["bad"]), fmt_s(s["wall"]),
                     fmt_mib(s["rss"]), fmt_s(s["cpu"]), ",".join(map(str, rcs)), "%.0f" % (n / s["wall"]) if s["wall"] else "-",
                     "-" if n == sizes[0] or rss[sizes[0]] is None or s["rss"] is None else
                     "%.1f" % ((s["rss"] - rss[sizes[0]]) * 1024 / (n - sizes[0]))])
    if hold:
        hold.close()
    report.table(["URLs", "list MB", "runs", "wall s", "RSS MiB", "CPU s", "exit", "URLs/s",
                  "B/URL over %d" % sizes[0]], rows,
                 "Scenario D: streaming distinct URLs (%s), -c 1000 --retries 0; medians of %d" % (
                     "refused loopback port" if hold else "nginx small page", reps))
    big = sizes[-1]
    if rss.get(big) and rss.get(sizes[0]):
        per = (rss[big] - rss[sizes[0]]) * 1024 / (big - sizes[0])
        targets.append(("D: memory per URL beyond %d-URL baseline, at %d URLs (aim 16 B)" % (sizes[0], big),
                        "%.1f B" % per, "MET" if per <= 16 else "MISSED"))


# ---------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 3)[3],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", metavar="A|B|C|D", help="scenarios to run (default all)")
    ap.add_argument("--quick", action="store_true", help="smaller numbers, 2 repetitions: a smoke run")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement (default 5)")
    ap.add_argument("--reps-b", type=int, default=0, help="repetitions in B (default --reps)")
    ap.add_argument("--reps-c", type=int, default=0, help="repetitions in C (default --reps)")
    ap.add_argument("--reps-d", type=int, default=1, help="repetitions in D (default 1)")
    default_areq = os.path.join(ROOT, "build-release", "src", "areq")
    if not os.path.exists(default_areq):
        default_areq = os.path.join(ROOT, "build", "src", "areq")
    ap.add_argument("--areq", default=default_areq, help="binary (default build-release/src/areq, else build/src/areq)")
    ap.add_argument("--compare", metavar="PATH", help="a second areq build, timed beside --areq in A and B,"
                    " alternating run by run")
    ap.add_argument("--no-peers", action="store_true", help="only areq (and --compare): no curl, wget2,"
                    " floor client or reference program")
    ap.add_argument("--floor", help="floor_client, the lower bound in B (default: tests/floor_client"
                    " in the build directory of --areq)")
    ap.add_argument("--reference", default=os.path.join(os.path.dirname(ROOT), "shared", "reference", "areq.py"))
    ap.add_argument("--no-ref", action="store_true", help="skip the reference program in A")
    ap.add_argument("--ref-b", action="store_true", help="also run the reference program in B (~101 s)")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--links", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--b-urls", type=int, default=10000)
    ap.add_argument("--c-sizes", default="1000,10000,100000")
    ap.add_argument("--c-conc", default="1,100,1000,10000")
    ap.add_argument("--c-fixed", type=int, default=10000, help="small-page list size for the concurrency curve")
    ap.add_argument("--d-sizes", default="10000,100000,1000000")
    ap.add_argument("--d-target", choices=("refused", "nginx"), default="refused")
    ap.add_argument("--server-workers", type=int, default=1, help="delay_server.py processes (default 1)")
    ap.add_argument("--timeout", type=float, default=300, help="limit for one run, seconds (default 300)")
    ap.add_argument("--work", default="/tmp/areq-bench", help="scratch directory (site, lists, outputs)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.txt"))
    args = ap.parse_args()
    scen = [s.upper() for s in args.scenarios] or ["A", "B", "C", "D"]
    for s in scen:
        if s not in "ABCD" or len(s) != 1:
            ap.error("unknown scenario %r" % s)
    if args.quick:
        args.reps = min(args.reps, 2)
        args.pages = min(args.pages, 500)
        args.b_urls = min(args.b_urls, 2000)
        args.c_sizes = "1000,5000"
        args.c_conc = "1,100,1000"
        args.c_fixed = min(args.c_fixed, 2000)
        args.d_sizes = "10000,100000"
        args.no_ref = True
    args.c_sizes = [int(x) for x in args.c_sizes.split(",")]
    args.c_conc = [int(x) for x in args.c_conc.split(",")]
    args.d_sizes = [int(x) for x in args.d_sizes.split(",")]
    args.areq = os.path.abspath(args.areq)
    if args.compare:
        args.compare = os.path.abspath(args.compare)
        if not os.access(args.compare, os.X_OK):
            sys.exit("run.py: --compare %s: not an executable" % args.compare)
    # areq is BUILD/src/areq; meson puts the bench tool at BUILD/tests/floor_client
    args.floor = os.path.abspath(args.floor or os.path.join(os.path.dirname(os.path.dirname(args.areq)),
                                                            "tests", "floor_client"))
    if not os.access(args.areq, os.X_OK):
        sys.exit("run.py: %s: not built (meson setup build-release --buildtype=release && ninja -C build-release)" % args.areq)
    os.makedirs(args.work, exist_ok=True)

    # the servers and the clients need descriptors for 10,000+ connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    report = Report()
    tools = Tools(args)
    servers = Servers(args.work)

    def on_signal(sig, _frame):
        servers.stop()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        git = "-"
    cpu = "-"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "-")
    except OSError:
        pass
    report("areq benchmarks, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    report("machine: %d CPUs (%s), Linux %s; RLIMIT_NOFILE %d; net.core.somaxconn %s" % (
        os.cpu_count(), cpu, platform.release(), nofile, somaxconn()))
    report("areq: %s (%s, git %s)" % (tools.version("areq"), os.path.relpath(args.areq, ROOT), git))
    if args.compare:
        report("compare: %s (%s)" % (subprocess.run([args.compare, "-V"], stdout=subprocess.PIPE,
                                                    text=True).stdout.strip(), args.compare))
    report("peers: %s; %s; %s; python %s" % (tools.version("curl"), tools.version("wget2"), tools.version("nginx"),
                                             platform.python_version()))
    report("medians of repeated runs (tools alternate); wall = elapsed seconds, RSS = peak resident set (" + RSS_SOURCE + ")%s"
           % (" [--quick]" if args.quick else ""))
    uv = subprocess.run([sys.executable, "-c", "import uvloop"], stderr=subprocess.DEVNULL).returncode == 0
    report("delay_server.py: %s on %s" % ("uvloop" if uv else "asyncio (no uvloop)", sys.executable))
    for n in tools.notes:
        report("note: " + n)
    load = os.getloadavg()[0]
    report("load average at start: %.2f%s" % (load, "  (other work is running: expect noise)" if load > 0.5 else ""))
    targets = []
    try:
        for s in scen:
            {"A": scenario_a, "B": scenario_b, "C": scenario_c, "D": scenario_d}[s](args, report, tools, servers, targets)
            report("  (load average after scenario %s: %.2f)" % (s, os.getloadavg()[0]))
    except KeyboardInterrupt:
        report("interrupted")
    finally:
        servers.stop()
    if targets:
        report.table(["target (issue 5)", "measured", "verdict"], [list(t) for t in targets], "Targets")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(report.lines) + "\n")
    log("written to %s" % args.out)


if __name__ == "__main__":
    main()
