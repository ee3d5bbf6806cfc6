"""Shared helpers for areq's end-to-end tests (Python standard library only).

Environment:
  AREQ_BIN      path of the areq binary under test (required)
  AREQ_REFERENCE  optional path of the reference program areq.py (see REFERENCE below)
  AREQ_WRAPPER  optional command prefix to run areq under, e.g.
                "valgrind --error-exitcode=99 --leak-check=full
                 --errors-for-leak-kinds=definite,indirect -q";
                when set, time limits are multiplied by TIME_FACTOR (20)

Everything talks to 127.0.0.1 only: the fixture server (tests/fixture/server.py), a port
nothing listens on (refused_port) and a listener that never completes a handshake
(Blackhole). Proxy variables are removed from areq's environment.
"""
import atexit
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(REPO, "tests", "fixture")
SERVER = os.path.join(FIXTURE, "server.py")
# The reference program: areq.py of Real Python's asyncio walk-through (repository
# realpython/materials, folder asyncio-walkthrough). It is not part of this repository; the
# acceptance test runs it when AREQ_REFERENCE names it (or it sits at the default path beside
# the repository) and is skipped, saying so, when it does not.
REFERENCE = os.path.abspath(os.environ.get("AREQ_REFERENCE") or os.path.join(
    REPO, "..", "shared", "reference", "areq.py"))
SYSTEM_PYTHON = "/usr/bin/python3"

WRAPPER = shlex.split(os.environ.get("AREQ_WRAPPER", ""))
TIME_FACTOR = 20 if WRAPPER else 1
HEADER = "source_url\tparsed_url"

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy",
              "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY")


def load_site():
    """tests/fixture/site.py as a module (its name clashes with the stdlib "site")."""
    spec = importlib.util.spec_from_file_location("areq_fixture_site",
                                                  os.path.join(FIXTURE, "site.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


site = load_site()


def areq_bin():
    b = os.environ.get("AREQ_BIN")
    if not b:
        raise RuntimeError("set AREQ_BIN to the areq binary to test, e.g. AREQ_BIN=build/areq")
    b = os.path.abspath(b)
    if not os.access(b, os.X_OK):
        raise RuntimeError("AREQ_BIN=%s is not an executable file" % b)
    return b


NO_CONFIG_DIR = tempfile.mkdtemp(prefix="areq-no-config-")
atexit.register(shutil.rmtree, NO_CONFIG_DIR, True)


def areq_env():
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    # No configuration file or CA variable of the machine's may change what a test sees.
    for k in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        env.pop(k, None)
    env["XDG_CONFIG_HOME"] = NO_CONFIG_DIR
    return env


def traced_env():
    """areq_env() for a run of areq under strace: LeakSanitizer cannot run under ptrace, and
    in CI's sanitizer build it would fail the run at exit ("LeakSanitizer has encountered a
    fatal error"), so leaks go unchecked there (the suite's other runs check them)."""
    env = areq_env()
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    return env




def served(url):
    """The body a loopback server sends for url, fetched directly (the fixture server's
    bodies depend only on the URL), to compare with what areq saved."""
    import urllib.request
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def temporary_files_open(pid, root):
    """The temporary files of --save below root that process pid holds open, as
    /proc/PID/fd/N paths (os.stat gives their size): named ones (.areq-*.part) and nameless
    ones (O_TMPFILE, which /proc shows as "DIR/#INODE (deleted)"). For tests that must know
    that a body is being written, whichever kind the file system gives."""
    root = os.path.realpath(root) + "/"
    fd_dir = "/proc/%d/fd" % pid
    out = []
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        base = os.path.basename(target)
        if target.startswith(root) and (base.startswith(".areq-") or (
                base.startswith("#") and target.endswith(" (deleted)"))):
            out.append(os.path.join(fd_dir, fd))
    return out


def file_tree(root):
    """{relative path: bytes} of every file below root; symbolic links are listed as
    ("link", target), not followed."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out

def mount_tmpfs(test, path, size, cleanup=True):
    """Mounts a tmpfs of `size` (e.g. "64k") at `path` for `test`, unmounted when it ends
    (unless cleanup is False: then the caller unmounts). Skips the test, saying why, where
    that cannot be done: no mount(8) (a bare mmdebstrap root lacks Debian's mount package),
    or no right to mount (not root, no CAP_SYS_ADMIN)."""
    if shutil.which("mount") is None:
        test.skipTest("no mount command (Debian's mount package) for a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path],
                       capture_output=True)
    if r.returncode != 0:
        test.skipTest("cannot mount a %s tmpfs (needs root and CAP_SYS_ADMIN): %s"
                      % (size, r.stderr.decode(errors="replace").strip()))
    if cleanup:
        test.addCleanup(subprocess.run, ["umount", "-l", path])


_asan = []


def is_asan_build():
    """Whether AREQ_BIN was built with -Db_sanitize=address (as CI's second run is): its
    shadow memory and quarantine then dominate any peak RSS figure."""
    if not _asan:
        with open(areq_bin(), "rb") as f:
            _asan.append(b"__asan_init" in f.read())
    return _asan[0]


# How much later than the moment areq acted the server may log it (REQ, or the END of a
# request whose client went away): the server's thread must be scheduled first. On a busy
# 2-core machine (load 10) that is tens of milliseconds; areq under valgrind also reacts
# late. A bound in seconds is judged on the server's times with this margin, never on the
# client's clock, whose readings also carry the start of areq (and of valgrind).
SERVER_SLACK = 0.5 if not WRAPPER else 1.5


# What the test's own clock adds to a run of areq beyond the work: areq's start and exit
# (valgrind's take seconds) and waiting for a turn on a busy machine. A bound on a whole run
# measured by the test is "the work's seconds + RUN_SLACK" (within()), and is only written
# where what it guards against (a stall waited out, a Retry-After of an hour, the 30 s
# default timeout) takes longer still.
RUN_SLACK = 5.0 if not WRAPPER else 20.0


def within(seconds):
    """A limit for a whole run measured by the test: seconds of work plus RUN_SLACK."""
    return seconds + RUN_SLACK


def localhost_is_loopback():
    """Whether the name localhost resolves to 127.0.0.1 here. Tests that follow links to it
    are skipped, naming the reason, where it does not: a bare chroot made by debootstrap or
    mmdebstrap has no /etc/hosts, and nothing else answers for that name."""
    try:
        return "127.0.0.1" in {a[4][0] for a in socket.getaddrinfo("localhost", None,
                                                                   socket.AF_INET)}
    except OSError:
        return False


def scaled(seconds):
    return seconds * TIME_FACTOR


# --- the fixture server -------------------------------------------------------------------

class FixtureServer:
    """tests/fixture/server.py in a child process, with its request log in a temp file."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="areq-fixture-")
        self.log_path = os.path.join(self.dir, "requests.log")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--log", self.log_path] + list(args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        line = self.proc.stdout.readline().decode("ascii", "replace").split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise RuntimeError("fixture server did not start (said %r)" % line)
        self.port = int(line[1])
        self.origin = "http://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.origin + path

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server exits at end of stdin
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def events(self):
        """[(event, conn, method, target, status_or_None, time)] from the request log."""
        out = []
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # being written
                    p = line.rstrip("\n").split("\t")
                    if p[0] == "REQ":
                        out.append(("REQ", int(p[1]), p[2], p[3], None, float(p[4])))
                    elif p[0] == "END":
                        out.append(("END", int(p[1]), p[2], p[3], p[4], float(p[5])))
        except FileNotFoundError:
            pass
        return out

    def requests(self, target=None):
        """The REQ events, all or those for one request target (path plus query)."""
        return [e for e in self.events() if e[0] == "REQ" and (target is None or e[3] == target)]

    def held(self, target, wait=10.0):
        """Seconds from the first REQ of target to its END, as the server logged them (the END
        of /stall or /drip comes when the client closes). The server may log that END a
        little after areq has exited, so this waits for it up to `wait` seconds; None if it
        never came."""
        deadline = time.monotonic() + wait
        while True:
            req = None
            for e in self.events():
                if e[3] == target and req is None and e[0] == "REQ":
                    req = e[5]
                elif e[3] == target and req is not None and e[0] == "END":
                    return e[5] - req
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def count(self, target):
        return len(self.requests(target))

    def completed(self, target):
        return any(e[0] == "END" and e[3] == target for e in self.events())

    def max_in_flight(self, prefix):
        """The most requests whose target starts with prefix that were open at once."""
        return max_in_flight(self.events(), prefix)

    # issue 14: conditional requests (see server.py's docstring)
    def conditional(self, target=None):
        """The COND lines, all or those for one target: [(conn, method, target,
        if_none_match, if_modified_since, status, time)], a validator None when not sent."""
        out = []
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if line.endswith("\n") and p[0] == "COND" and len(p) == 8 and \
                        (target is None or p[3] == target):
                    out.append((int(p[1]), p[2], p[3], None if p[4] == "-" else p[4],
                                None if p[5] == "-" else p[5], int(p[6]), float(p[7])))
        return out

    def cond14(self, route, **query):
        """Calls a /cond14/<route> control route (change, mode, stats, reset) with the given
        query; the body as text, or the parsed JSON of stats."""
        import json
        import urllib.parse
        import urllib.request
        url = self.url("/cond14/%s?%s" % (route, urllib.parse.urlencode(query)))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with opener.open(url, timeout=30) as r:
            body = r.read().decode("utf-8")
        return json.loads(body) if route == "stats" else body


def max_in_flight(events, prefix):
    """The most requests in `events` (as FixtureServer.events gives them) whose target starts
    with prefix that were open at once. At equal times an END counts before a REQ."""
    cur = best = 0
    for e in sorted((e for e in events if e[3].startswith(prefix)),
                    key=lambda e: (e[5], e[0] == "REQ")):
        cur += 1 if e[0] == "REQ" else -1
        best = max(best, cur)
    return best


def target_of(url):
    """The request target (path and query) the server logs for a URL."""
    rest = url.split("://", 1)[1]
    i = rest.find("/")
    return rest[i:] if i >= 0 else "/"


def refused_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Blackhole:
    """A loopback port whose handshakes never complete: a listener with a backlog of 0 that
    never accepts, its queue filled, so the kernel drops further SYNs."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except (BlockingIOError, OSError):
                pass
            self.fill.append(s)
        time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        for s in self.fill:
            s.close()
        self.sock.close()


def wait_for(cond, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(interval)
    return cond()


# --- running areq -------------------------------------------------------------------------

def stop_with_signal(tc, p, sig, code, context=""):
    """Sends `sig` to the running areq `p` and asserts that it exits with `code` at once:
    within(0) seconds, where what it stops would hold it a minute or more."""
    name = signal.Signals(sig).name
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        rc = p.wait(within(0))
    except subprocess.TimeoutExpired:
        tc.fail("areq still running %s s after %s%s" % (within(0), name, context))
    tc.assertLess(time.monotonic() - t0, within(0))
    err = p.stderr.read().decode("utf-8", "replace")
    tc.assertEqual(rc, code, "exit status after %s; stderr: %s" % (name, err))


def page_url(srv, name, hrefs=(), links=0):
    """A /page URL on `srv` whose body links to hrefs (then to l0.html..l<links-1>.html); the
    query is percent-encoded with upper-case hex so the URL is already in areq's normal form."""
    q = ["href=" + urllib.parse.quote(h, safe="") for h in hrefs]
    if links:
        q.append("links=%d" % links)
    return srv.url("/page/%s%s" % (name, ("?" + "&".join(q)) if q else ""))


def page_expected(url, hrefs=(), links=0):
    """The targets areq must write for a page_url(..., hrefs, links) page at `url`."""
    return {urllib.parse.urljoin(url, h)
            for h in list(hrefs) + ["l%d.html" % k for k in range(links)]}


class Result:
    def __init__(self, rc, out, err, elapsed, cwd):
        self.rc, self.out, self.err, self.elapsed, self.cwd = rc, out, err, elapsed, cwd

    def read(self, name="foundurls.txt"):
        with open(os.path.join(self.cwd, name), encoding="utf-8", newline="") as f:
            return f.read()

    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]

    def __repr__(self):
        return "<areq rc=%s %.2fs stderr=%r>" % (self.rc, self.elapsed, self.err[-2000:])


def areq_argv(args):
    return WRAPPER + [areq_bin()] + list(args)


def run_areq(args, cwd, stdin=None, timeout=60):
    """Runs areq with args in cwd; stdin: bytes/str to pipe, or None for /dev/null."""
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    t0 = time.monotonic()
    try:
        p = subprocess.run(areq_argv(args), cwd=cwd, env=areq_env(),
                           input=stdin if stdin is not None else None,
                           stdin=None if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(timeout))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("areq %s did not finish within %ss; stderr: %r"
                             % (args, scaled(timeout), (e.stderr or b"")[-2000:]))
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), time.monotonic() - t0, cwd)


def start_areq(args, cwd):
    """Starts areq in the background (for signal tests)."""
    return subprocess.Popen(areq_argv(args), cwd=cwd, env=areq_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# --- output -------------------------------------------------------------------------------

def parse_output(tc, text, header=True):
    """Checks the form of an output file and returns its pairs as a list of (source, target).

    Form: whole lines ending in LF; the header first when header is set; every other line one
    source and one target separated by one tab; a source's targets unique and contiguous."""
    if text == "":
        tc.assertFalse(header, "output is empty: the header line is missing")
        return []
    tc.assertTrue(text.endswith("\n"), "output does not end with a whole line: %r" % text[-200:])
    tc.assertNotIn("\r", text)
    lines = text[:-1].split("\n")
    if header:
        tc.assertEqual(lines[0], HEADER, "first line is not the header")
        lines = lines[1:]
    else:
        tc.assertNotEqual(lines[0], HEADER, "header written despite --no-header")
    pairs = []
    done = set()
    cur = None
    seen = set()
    for line in lines:
        parts = line.split("\t")
        tc.assertEqual(len(parts), 2, "not a source<TAB>target line: %r" % line)
        src, dst = parts
        tc.assertTrue(src.startswith(("http://", "https://")), "bad source: %r" % line)
        tc.assertTrue(dst.startswith(("http://", "https://")), "bad target: %r" % line)
        if src != cur:
            tc.assertNotIn(src, done, "targets of %s are not contiguous" % src)
            if cur is not None:
                done.add(cur)
            cur = src
            seen = set()
        tc.assertNotIn(dst, seen, "pair written twice: %r" % line)
        seen.add(dst)
        pairs.append((src, dst))
    return pairs


def by_source(pairs):
    out = {}
    for s, t in pairs:
        out.setdefault(s, set()).add(t)
    return out


class AreqTest(unittest.TestCase):
    """Base class: a fresh temp directory per test (self.tmp) and assertion helpers."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="areq-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as f:
            f.write(data)
        return path

    def run_traced(self, calls, args, env=None, timeout=120):
        """Runs areq with args in the case's folder under `strace -f -e trace=CALLS`, with
        traced_env() unless env is given; skips the case where strace is missing or areq runs
        under a wrapper. The CompletedProcess (bytes) and the trace's lines."""
        if WRAPPER or not shutil.which("strace"):
            self.skipTest("needs strace, and areq not under a wrapper")
        trace = os.path.join(self.tmp, "trace")
        p = subprocess.run(["strace", "-f", "-e", "trace=" + calls, "-o", trace, areq_bin()]
                           + list(args), cwd=self.tmp,
                           env=env if env is not None else traced_env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        with open(trace) as f:
            return p, f.readlines()

    def write_urls(self, urls, name="urls.txt"):
        return self.write(name, "".join(u + "\n" for u in urls))

    def run_areq(self, args, stdin=None, timeout=60, cwd=None):
        return run_areq(args, cwd or self.tmp, stdin=stdin, timeout=timeout)

    def assertFailureReported(self, res, url, *words):
        """Some stderr line names url (and every word, e.g. "404")."""
        for line in res.err.splitlines():
            if url in line and all(w in line for w in words):
                return
        self.fail("no stderr line names %s %s; stderr:\n%s" % (url, " ".join(words), res.err))

    def assertSummary(self, res, ok=None, failed=None):
        """The last stderr line is the summary; counts checked when written as "N ok"."""
        lines = res.err_lines()
        self.assertTrue(lines, "stderr is empty: no summary line")
        last = lines[-1]
        self.assertIn("ok", last, "last stderr line is not a summary: %r" % last)
        self.assertIn("failed", last, "last stderr line is not a summary: %r" % last)
        import re
        for n, word in ((ok, "ok"), (failed, "failed")):
            m = re.search(r"(\d+) %s\b" % word, last)
            if n is not None and m:
                self.assertEqual(int(m.group(1)), n, "summary %r: expected %d %s" % (last, n, word))


# --- running a file -------------------------------------------------------------------------

class SkipNamingResult(unittest.TextTestResult):
    """Names every skipped test on a line of its own, "SKIPPED: <test id>: <reason>", on
    stderr whatever the verbosity: meson counts the whole file as one test that passed, and
    .ci/run collects these lines so that no skip passes for a pass."""

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.stream.flush()
        sys.stderr.write("%sSKIPPED: %s: %s\n" % ("\n" if self.dots else "", test.id(),
                                                  " ".join(str(reason).split())))
        sys.stderr.flush()


def main():
    """unittest.main() with skipped tests named (SkipNamingResult)."""
    unittest.main(testRunner=unittest.TextTestRunner(resultclass=SkipNamingResult))


def fixture_module(namespace, *server_args):
    """setUpModule and tearDownModule for a test file whose tests share one fixture server
    (started with server_args) in the file's global SRV: AREQ_BIN is checked first, so that
    a missing binary fails at once with the reason. In the file:

        setUpModule, tearDownModule = common.fixture_module(globals())
    """
    def set_up():
        areq_bin()
        namespace["SRV"] = FixtureServer(*server_args)

    def tear_down():
        if namespace.get("SRV"):
            namespace["SRV"].stop()

    return set_up, tear_down


def host_dir(srv):
    """The folder --save makes for the fixture server's host: 127.0.0.1:PORT."""
    return "127.0.0.1:%d" % srv.port
