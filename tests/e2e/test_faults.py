#!/usr/bin/env python3
"""End-to-end tests of areq under faults (issue 4): bodies that are too big or not HTML,
servers that stall, drip or fail, retries, bad redirects, malformed HTTP, bad input lines,
signals, a reader that goes away, a full disk, and pathological pages. For each fault they
check what areq names on stderr, its exit status, how long it took, its peak memory and that
the output stays whole.

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_faults.py
    AREQ_BIN=build/src/areq python3 tests/e2e/test_faults.py -v RetryTest
Under AREQ_WRAPPER (e.g. valgrind) time limits are scaled and the memory checks are skipped,
since the wrapper's memory is not areq's.

Peak memory: a child's ru_maxrss from wait4 is no use when the child is spawned straight from
this (large) Python process: Linux carries the high-water RSS of the address space replaced by
execve into the new program's maxrss, and subprocess spawns with vfork, so areq would be
charged with this process's own peak. measure_areq() therefore runs areq from a small
launcher (python3 -S) that forks, execs areq and reports areq's ru_maxrss from wait4; the
launcher's few MB are the floor of the figure.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, by_source, parse_output, scaled, target_of  # noqa: E402

SRV = None
MB = 1 << 20
RSS_LIMIT_KB = 60 * 1024  # the spec's "peak RSS stays small"


setUpModule, tearDownModule = common.fixture_module(globals())


_seq = [0]


def unique(prefix):
    """A key no other request to the (shared) fixture server uses."""
    _seq[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _seq[0])


def page_url(name, hrefs=(), links=0):
    return common.page_url(SRV, name, hrefs, links)


page_expected = common.page_expected


def html_url(name, body):
    return SRV.url("/html/%s?body=%s" % (name, quote(body, safe="")))


# --- running areq with its peak memory measured ---------------------------------------------

LAUNCHER = r"""
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write("%d %.3f\n" % (ru.ru_maxrss, ru.ru_utime + ru.ru_stime))
code = os.waitstatus_to_exitcode(st)
sys.exit(code if code >= 0 else 128 - code)
"""


def measure_areq(args, cwd, timeout=60):
    """Runs areq like common.run_areq and returns (Result, peak RSS in KiB or None). None
    under AREQ_WRAPPER, where the figure would be the wrapper's. The Result's cpu is the
    processor seconds areq used (None under AREQ_WRAPPER): a bound on the work that a busy
    machine does not stretch, as it does the elapsed time."""
    if common.WRAPPER:
        res = common.run_areq(args, cwd, timeout=timeout)
        res.cpu = None
        return res, None
    rss_file = os.path.join(cwd, ".areq-maxrss")
    argv = [sys.executable, "-S", "-c", LAUNCHER, rss_file] + common.areq_argv(args)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=common.areq_env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError("areq %s did not finish within %ss; stderr: %r"
                             % (args, scaled(timeout), err[-2000:]))
    res = common.Result(p.returncode, out.decode("utf-8", "replace"),
                        err.decode("utf-8", "replace"), time.monotonic() - t0, cwd)
    with open(rss_file) as f:
        rss, cpu = f.read().split()
    rss = int(rss)
    res.cpu = float(cpu)
    os.unlink(rss_file)
    return res, rss


# --- a raw listener that pours out a body, counting what it managed to send ------------------

class Firehose:
    """A loopback HTTP responder (one thread per connection) that answers every request with
    `head` (status line and headers, no blank line) and then a body of `total` bytes made of
    `unit` repeated, chunked when chunked=True. sent[k] is how many body bytes the k-th
    connection got into the kernel before the client went away or the body ended: a client
    that gives up at the headers leaves it at about the socket buffers' size."""

    def __init__(self, head, unit, total=1 << 30, chunked=False):
        self.head, self.unit, self.total, self.chunked = head, unit, total, chunked
        self.sent = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()
        return self

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def total_sent(self):
        with self.lock:
            return sum(self.sent)

    def accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.sent.append(0)
                k = len(self.sent) - 1
            threading.Thread(target=self.serve, args=(conn, k), daemon=True).start()

    def serve(self, conn, k):
        conn.settimeout(0.5)
        try:
            req = b""
            while b"\r\n\r\n" not in req and not self.stop.is_set():
                try:
                    d = conn.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                req += d
            conn.sendall(self.head.encode("latin-1") + b"\r\n\r\n")
            block = self.unit * max(1, 65536 // len(self.unit))
            left = self.total
            while left > 0 and not self.stop.is_set():
                piece = block[:left]
                data = (b"%x\r\n%s\r\n" % (len(piece), piece)) if self.chunked else piece
                try:
                    conn.sendall(data)
                except socket.timeout:
                    continue  # the client is not reading; keep trying until it closes
                left -= len(piece)
                with self.lock:
                    self.sent[k] += len(piece)
            if self.chunked and left == 0:
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()


HTML_UNIT = b'<p>firehose <a href="fh.html">f</a></p>\n'
SOCKET_SLACK = 32 * MB  # what loopback socket buffers can swallow before a client reacts


# --- shared assertions ------------------------------------------------------------------------

class FaultTest(AreqTest):
    def assertFailedWith(self, res, url, reason):
        """A stderr line names url followed by a reason matching the regex `reason` (case
        insensitive), e.g. "max-size" or "timed? ?out|timeout"."""
        for line in res.err.splitlines():
            i = line.find(url)
            if i >= 0 and re.search(reason, line[i + len(url):], re.I):
                return
        self.fail("no stderr line names %s with a reason matching /%s/; stderr:\n%s"
                  % (url, reason, res.err[-3000:]))

    def assertReportedWithReason(self, res, url):
        """A stderr line names url and says something after it."""
        for line in res.err.splitlines():
            i = line.find(url)
            if i >= 0 and re.search(r"\w", line[i + len(url):]):
                return
        self.fail("no stderr line names %s with a reason; stderr:\n%s" % (url, res.err[-3000:]))

    def assertNotReported(self, res, url):
        for line in res.err.splitlines():
            # a URL followed by more of a longer URL is another URL
            for m in re.finditer(re.escape(url), line):
                nxt = line[m.end():m.end() + 1]
                self.assertFalse(nxt in ("", ":", " ", "\t"),
                                 "%s reported on stderr: %r" % (url, line))

    def assertSkipped(self, res, n):
        last = res.err_lines()[-1] if res.err_lines() else ""
        m = re.search(r"(\d+) skipped\b", last)
        self.assertTrue(m, "summary %r does not say how many were skipped" % last)
        self.assertEqual(int(m.group(1)), n, "summary %r: expected %d skipped" % (last, n))

    def assertRssBelow(self, rss_kb, limit_kb=RSS_LIMIT_KB, what=""):
        if rss_kb is None:
            return  # under AREQ_WRAPPER
        self.assertLess(rss_kb, limit_kb, "%speak RSS of areq was %.1f MB (limit %.0f MB)"
                        % (what and what + ": ", rss_kb / 1024, limit_kb / 1024))

    def assertFieldsClean(self, pairs):
        """Every field a single valid URL: no white space, quote or control character, a
        scheme and a host."""
        for src, dst in pairs:
            for f in (src, dst):
                self.assertIsNone(re.search(r'[\x00-\x20"\x7f]', f),
                                  "field holds white space, a quote or a control: %r" % f[:300])
                u = urlsplit(f)
                self.assertIn(u.scheme, ("http", "https"), f[:300])
                self.assertTrue(u.hostname, f[:300])

    def output(self, res, name="foundurls.txt"):
        return by_source(parse_output(self, res.read(name)))


# --- --max-size -------------------------------------------------------------------------------

class IdleConnectionTest(FaultTest):
    def test_closed_while_idle(self):
        """A connection libcurl keeps for the next transfer, which the server then closes:
        areq stops watching it (closed, it would be readable on every turn of the loop),
        and the next transfer to the host, half a second later, takes a new connection.
        Counted, not timed: the loop's epoll_wait calls, from strace."""
        first = SRV.url("/closed-when-idle")
        second = SRV.url("/page/after-idle.html?links=2")
        p, trace = self.run_traced("epoll_wait,epoll_pwait",
                                   ["-c", "1", "--delay", "0.5", "-o", "-", first, second],
                                   timeout=scaled(60))
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, err)
        pairs = by_source(parse_output(self, p.stdout.decode()))
        self.assertEqual(len(pairs.get(second, [])), 2, p.stdout.decode())
        conns = {e[1] for e in SRV.requests()
                 if e[3] in (target_of(first), target_of(second))}
        self.assertEqual(len(conns), 2, SRV.requests())
        waits = sum(1 for line in trace if "epoll_wait(" in line or "epoll_pwait(" in line)
        # Woken by the closed socket on every turn for half a second, it made thousands.
        self.assertLess(waits, 300, "%d epoll_wait calls" % waits)

    def test_kept_connection_is_taken_up_without_epoll_ctl(self):
        """Transfers one after another on one kept-alive connection: the poll of its socket
        stays while the connection waits in libcurl's pool, so taking it up again costs no
        epoll_ctl (closed on every REMOVE and made again, it cost about 5 a transfer).
        Counted from strace, together with the connections the server saw."""
        n = 30
        urls = [SRV.url("/page/kept-%s/%d.html?links=2" % (unique("k"), i)) for i in range(n)]
        lst = self.write_urls(urls, "list")
        p, trace = self.run_traced("epoll_ctl", ["-c", "1", "-o", "-", lst],
                                   timeout=scaled(60))
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        pairs = by_source(parse_output(self, p.stdout.decode()))
        self.assertEqual(sorted(pairs), sorted(urls))
        targets = {target_of(u) for u in urls}
        conns = {e[1] for e in SRV.requests() if e[3] in targets}
        self.assertEqual(len(conns), 1, SRV.requests())
        calls = sum(1 for line in trace if "epoll_ctl(" in line)
        # 9 here for all 30, where closing the poll on every REMOVE made 149.
        self.assertLess(calls, n, "%d epoll_ctl calls for %d transfers" % (calls, n))


class MaxSizeTest(FaultTest):
    def test_declared_too_big_is_abandoned_at_once(self):
        good = page_url("ms-declared-good.html", ["a.html"])
        huge = SRV.url("/huge?size=200000000&k=%s" % unique("decl"))
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d" % (4 << 30)
        with Firehose(head, HTML_UNIT) as fh:
            declared = fh.url("/declared-4g.html")
            self.write_urls([huge, declared, good])
            r, rss = measure_areq(["--max-size", "1M"], self.tmp)
            sent = fh.total_sent()
        self.assertEqual(r.rc, 1, r)
        for u in (huge, declared):
            self.assertFailedWith(r, u, r"max-size")
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=1, failed=2)
        self.assertLess(sent, SOCKET_SLACK, "areq read %d bytes of a body declared 4 GiB "
                        "with --max-size 1M" % sent)
        self.assertLess(r.elapsed, common.within(1))
        self.assertRssBelow(rss)

    def test_growing_too_big_is_abandoned(self):
        good = page_url("ms-grow-good.html", ["a.html"])
        chunked = SRV.url("/huge?size=200000000&chunked=1&k=%s" % unique("grow"))
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked"
        with Firehose(head, HTML_UNIT, chunked=True) as fh:
            endless = fh.url("/chunked-1g.html")
            self.write_urls([chunked, endless, good])
            r, rss = measure_areq(["--max-size", "1M"], self.tmp)
            sent = fh.total_sent()
        self.assertEqual(r.rc, 1, r)
        for u in (chunked, endless):
            self.assertFailedWith(r, u, r"max-size")
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=1, failed=2)
        self.assertLess(sent, MB + SOCKET_SLACK, "areq read %d bytes of a chunked body "
                        "with --max-size 1M" % sent)
        self.assertLess(r.elapsed, common.within(1))
        self.assertRssBelow(rss)

    def test_gzip_bomb_stops_at_the_cap(self):
        good = page_url("ms-bomb-good.html", ["a.html"])
        bomb = SRV.url("/gzip-bomb")  # 1 GiB of zeros inflated, about 1 MB on the wire
        self.write_urls([bomb, good])
        r, rss = measure_areq([], self.tmp)  # the default cap, 10M
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, bomb, r"max-size")
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertLess(r.elapsed, common.within(1), "the gzip bomb was not stopped")
        self.assertRssBelow(rss)

    def test_peak_rss_with_1M_cap(self):
        urls = [SRV.url("/huge?size=200000000&k=%s" % unique("rss")),
                SRV.url("/huge?size=200000000&chunked=1&k=%s" % unique("rss")),
                SRV.url("/gzip-bomb?k=%s" % unique("rss"))]
        self.write_urls(urls)
        r, rss = measure_areq(["--max-size", "1M"], self.tmp)
        self.assertEqual(r.rc, 1, r)
        for u in urls:
            self.assertFailedWith(r, u, r"max-size")
        self.assertEqual(self.output(r), {})
        self.assertLess(r.elapsed, common.within(1))
        self.assertRssBelow(rss)

    def test_cap_applies_to_the_decoded_body(self):
        small = SRV.url("/gzip-bomb?size=900000")      # 900 kB decoded, a few kB sent
        big = SRV.url("/gzip-bomb?size=2000000")       # 2 MB decoded, a few kB sent
        self.write_urls([small, big])
        r = self.run_areq(["--max-size", "1M"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, big, r"max-size")
        self.assertNotReported(r, small)
        self.assertSummary(r, ok=1, failed=1)

    def test_default_and_suffixes(self):
        def sizes(*pairs):  # (size, fits) -> URLs
            return [(SRV.url("/huge?size=%d&k=%s" % (n, unique("sfx"))), fits) for n, fits in pairs]

        cases = [
            ([], sizes((9900000, True), (11000000, False))),             # default 10M
            (["--max-size", "1k"], sizes((900, True), (1100, False))),
            (["--max-size", "1M"], sizes((990000, True), (1100000, False))),
            (["--max-size", "1G"], sizes((11000000, True))),
            (["--max-size", "0"], sizes((11000000, True))),               # no limit
        ]
        for args, urls in cases:
            with self.subTest(args=args):
                self.write_urls([u for u, _ in urls])
                r = self.run_areq(args)
                fits = [u for u, f in urls if f]
                self.assertEqual(r.rc, 0 if len(fits) == len(urls) else 1, r)
                for u, f in urls:
                    if f:
                        self.assertNotReported(r, u)
                    else:
                        self.assertFailedWith(r, u, r"max-size")
                self.assertEqual(set(self.output(r)), set(fits))
        for bad in ("10x", "-1", "abc", "", "1.5.M"):
            with self.subTest(bad=bad):
                r = self.run_areq(["--max-size", bad])
                self.assertEqual(r.rc, 2, r)


# --- bodies that are not HTML -----------------------------------------------------------------

class NonHtmlTest(FaultTest):
    def test_binary_and_text_are_skipped(self):
        good = page_url("nh-good.html", ["a.html"])
        binary, text = SRV.url("/binary?k=%s" % unique("nh")), SRV.url("/text?k=%s" % unique("nh"))
        self.write_urls([binary, good, text])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, "bodies that are not HTML are skipped, not failed: %r" % r)
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])},
                         "a body that is not HTML must not be parsed")
        self.assertSummary(r, ok=1, failed=0)
        self.assertSkipped(r, 2)
        # With a real failure beside them the status is 1, and they still count as skipped.
        missing = SRV.url("/status/404?k=%s" % unique("nh"))
        self.write_urls([binary, text, missing])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        self.assertSummary(r, ok=0, failed=1)
        self.assertSkipped(r, 2)

    def test_big_non_html_is_not_downloaded(self):
        good = page_url("nh-big-good.html", ["a.html"])
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: %d" % (1 << 30))
        head_ch = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked"
        with Firehose(head, b"\x00\xffbinary", total=1 << 30) as fh, \
                Firehose(head_ch, b"\x89PNG\x00", total=1 << 30, chunked=True) as fh2:
            urls = [fh.url("/big.bin"), fh2.url("/big.png")]
            self.write_urls(urls + [good])
            # No size cap, so only "not HTML" can stop these bodies.
            r, rss = measure_areq(["--max-size", "0"], self.tmp)
            sent = fh.total_sent(), fh2.total_sent()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertSkipped(r, 2)
        for n in sent:
            self.assertLess(n, SOCKET_SLACK, "a 1 GiB body that is not HTML was read (%d bytes "
                            "sent): it must be stopped at the headers" % n)
        self.assertLess(r.elapsed, common.within(1))
        self.assertRssBelow(rss)


# --- slow servers -----------------------------------------------------------------------------

TIMEOUT_WORDS = r"timed? ?out|timeout|too slow"


class SlowTest(FaultTest):
    def assertHeldAtMost(self, url, seconds):
        """The server saw areq close url's connection within seconds of the request (plus
        common.SERVER_SLACK for its own lateness): judged on the server's clock, which
        neither areq's start nor valgrind's delays."""
        held = SRV.held(target_of(url))
        self.assertIsNotNone(held, "the server never saw %s end" % url)
        self.assertLess(held, seconds + common.SERVER_SLACK,
                        "%s held %.2f s by areq, limit %s s" % (url, held, seconds))

    def test_stall_and_drip_end_at_timeout(self):
        good = page_url("slow-good.html", ["a.html"])
        stall = SRV.url("/stall?hold=60&k=%s" % unique("st"))
        drip = SRV.url("/drip?bytes=100000&interval=0.5&k=%s" % unique("st"))
        self.write_urls([stall, drip, good])
        r = self.run_areq(["-t", "2", "--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, stall, TIMEOUT_WORDS)
        self.assertFailedWith(r, drip, TIMEOUT_WORDS)
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=1, failed=2)
        self.assertGreaterEqual(r.elapsed, 1.9, "gave up before -t 2")
        self.assertHeldAtMost(stall, 2)
        self.assertHeldAtMost(drip, 2)

    def test_slower_than_1_byte_per_second_within_short_timeout(self):
        drip = SRV.url("/drip?interval=2&k=%s" % unique("bps"))
        self.write_urls([drip])
        r = self.run_areq(["-t", "3", "--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, drip, TIMEOUT_WORDS)
        self.assertGreaterEqual(r.elapsed, 2.9)
        self.assertHeldAtMost(drip, 3)  # -t 3, well before the 10 s low-speed rule

    def test_slower_than_1_byte_per_second_for_10s(self):
        # Under 1 B/s with -Y 1 -y 10: given up after 10 s although -t allows 30. At 2.2 B/s
        # a transfer of 12 s is slow but not that slow, so it completes.
        crawl = SRV.url("/drip?interval=2&k=%s" % unique("bps10"))
        steady = SRV.url("/drip?bytes=26&interval=0.45&k=%s" % unique("bps10"))
        self.write_urls([crawl, steady])
        r = self.run_areq(["-t", "30", "--retries", "0", "-Y", "1", "-y", "10"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, crawl, TIMEOUT_WORDS + r"|slow|speed|rate")
        self.assertNotReported(r, steady)
        self.assertEqual(self.output(r), {steady: {SRV.url("/drip.html")}})
        self.assertEqual(SRV.count(target_of(crawl)), 1)
        self.assertGreaterEqual(r.elapsed, 11.0, "the 2.2 B/s transfer takes about 11.7 s")
        self.assertHeldAtMost(crawl, 10)  # the low-speed rule's 10 s, not -t 30


# --- retries ----------------------------------------------------------------------------------

class RetryTest(FaultTest):
    def times(self, url):
        return [e[5] for e in SRV.requests(target_of(url))]

    def test_flaky_succeeds_with_default_retries(self):
        url = SRV.url("/flaky?key=%s&fails=2" % unique("fl"))
        good = page_url("retry-good.html", ["a.html"])
        self.write_urls([url, good])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(SRV.count(target_of(url)), 3, "fails=2 needs 3 requests")
        pairs = parse_output(self, r.read())
        self.assertEqual(sorted(p for p in pairs if p[0] == url),
                         [(url, SRV.url("/flaky-ok.html"))], "pairs written exactly once")
        self.assertEqual(by_source(pairs), {url: {SRV.url("/flaky-ok.html")},
                                            good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=2, failed=0)
        # Exponential backoff with full jitter from 0.5 s: waits in [0, 0.5] then [0, 1].
        t = self.times(url)
        slack = common.SERVER_SLACK  # the gaps are the server's; arrivals may come late
        self.assertLessEqual(t[1] - t[0], 0.5 + slack, "first retry waited too long")
        self.assertLessEqual(t[2] - t[1], 1.0 + slack, "second retry waited too long")

    def test_flaky_fails_with_one_retry(self):
        url = SRV.url("/flaky?key=%s&fails=2" % unique("fl1"))
        self.write_urls([url])
        r = self.run_areq(["--retries", "1"])
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(SRV.count(target_of(url)), 2)
        self.assertFailedWith(r, url, r"503")
        self.assertEqual(self.output(r), {})
        self.assertSummary(r, ok=0, failed=1)

    def test_retry_after_is_honoured(self):
        url = SRV.url("/retry-after?key=%s&n=1&after=2" % unique("ra"))
        unavailable = SRV.url("/status/503?retry_after=2&k=%s" % unique("ra"))
        self.write_urls([url, unavailable])
        r = self.run_areq(["--retries", "1"])
        self.assertEqual(r.rc, 1, r)
        for u, n in ((url, 2), (unavailable, 2)):
            t = self.times(u)
            self.assertEqual(len(t), n, u)
            # the server logs a request once it has read it, so no allowance is needed
            self.assertGreaterEqual(t[1] - t[0], 2.0, "%s: Retry-After: 2 not honoured" % u)
            self.assertLess(t[1] - t[0], 2.0 + scaled(1.5))
        self.assertFailedWith(r, unavailable, "503")
        self.assertEqual(self.output(r), {url: {SRV.url("/ok.html")}})
        self.assertSummary(r, ok=1, failed=1)

    def test_which_statuses_are_retried(self):
        transient = [408, 429, 500, 502, 503, 504]
        permanent = [400, 403, 404, 410, 501]
        urls = {c: SRV.url("/status/%d?k=%s" % (c, unique("code"))) for c in transient + permanent}
        self.write_urls(list(urls.values()))
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for code, u in urls.items():
            n = SRV.count(target_of(u))
            self.assertEqual(n, 3 if code in transient else 1,
                             "HTTP %d requested %d times with the default --retries 2" % (code, n))
            self.assertFailedWith(r, u, str(code))
        self.assertSummary(r, ok=0, failed=len(urls))
        self.assertLess(r.elapsed, common.within(1.5))  # backoff: at most 0.5 + 1 s

    def test_transport_failures_are_retried(self):
        reset = SRV.url("/reset?k=%s" % unique("rst"))
        stall = SRV.url("/stall?hold=30&k=%s" % unique("rst"))
        good = page_url("rst-good.html", ["a.html"])
        self.write_urls([reset, stall, good])
        r = self.run_areq(["-t", "0.5", "--retries", "1"])
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(SRV.count(target_of(reset)), 2, "a reset is transient")
        self.assertEqual(SRV.count(target_of(stall)), 2, "a timeout is transient")
        self.assertReportedWithReason(r, reset)
        self.assertFailedWith(r, stall, TIMEOUT_WORDS)
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.write_urls([reset])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(SRV.count(target_of(reset)), 2 + 3, "default: 3 attempts at a reset")

    def test_retries_0_makes_one_request(self):
        urls = [SRV.url("/flaky?key=%s&fails=1" % unique("r0")),
                SRV.url("/reset?k=%s" % unique("r0")),
                SRV.url("/status/503?k=%s" % unique("r0")),
                SRV.url("/retry-after?key=%s&n=1&after=1" % unique("r0"))]
        self.write_urls(urls)
        r = self.run_areq(["--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        for u in urls:
            self.assertEqual(SRV.count(target_of(u)), 1, u)
            self.assertReportedWithReason(r, u)
        self.assertSummary(r, ok=0, failed=len(urls))
        self.assertLess(r.elapsed, common.within(0))


# --- redirects --------------------------------------------------------------------------------

class RedirectTest(FaultTest):
    def test_redirect_to_file_reads_nothing_local(self):
        local = self.write("local.html", '<a href="http://127.0.0.1/leaked.html">x</a>\n')
        fifo = os.path.join(self.tmp, "fifo.html")
        os.mkfifo(fifo)
        opened = []
        stop = threading.Event()

        def watch():  # a writer can open a FIFO only while someone has it open for reading
            while not stop.is_set():
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    time.sleep(0.005)
                    continue
                opened.append(True)
                os.close(fd)
                return

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        try:
            good = page_url("rf-good.html", ["a.html"])
            urls = [SRV.url("/redirect-file"),
                    SRV.url("/redirect?to=" + quote("file://" + local, safe="")),
                    SRV.url("/redirect?to=" + quote("file://" + fifo, safe="")),
                    SRV.url("/redirect?code=307&to=" + quote("file://localhost" + local, safe=""))]
            self.write_urls(urls + [good])
            r = self.run_areq(["-t", "5"])
        finally:
            stop.set()
            w.join()
        self.assertEqual(r.rc, 1, r)
        for u in urls:
            self.assertReportedWithReason(r, u)
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertNotIn("root:", r.err + r.out)
        self.assertNotIn("leaked", r.err + r.out + r.read())
        self.assertFalse(opened, "areq opened a local FIFO a redirect pointed at")
        self.assertSummary(r, ok=1, failed=len(urls))
        self.assertLess(r.elapsed, common.within(0))

    def test_redirect_loops_fail(self):
        good = page_url("rl-good.html", ["a.html"])
        loops = [SRV.url("/loop"), SRV.url("/loop/b")]
        self.write_urls(loops + [good])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for u in loops:
            self.assertFailedWith(r, u, r"redirect")
        self.assertEqual(self.output(r), {good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=1, failed=2)
        self.assertLess(r.elapsed, common.within(0))


# --- malformed HTTP ---------------------------------------------------------------------------

class MalformedTest(FaultTest):
    def test_malformed_responses_fail_that_url_only(self):
        bad = [SRV.url("/bad-chunked?k=%s" % unique("mal")), SRV.url("/garbage?k=%s" % unique("mal")),
               SRV.url("/close-mid-body?k=%s" % unique("mal"))]
        goods = [page_url("mal-%d.html" % k, links=30) for k in range(10)]
        self.write_urls(goods[:5] + bad + goods[5:])
        r = self.run_areq(["--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        for u in bad:
            self.assertReportedWithReason(r, u)
        for u in goods:
            self.assertNotReported(r, u)
        self.assertEqual(self.output(r), {u: page_expected(u, links=30) for u in goods})
        self.assertSummary(r, ok=len(goods), failed=len(bad))
        self.assertLess(r.elapsed, common.within(0))


# --- bad input lines --------------------------------------------------------------------------

class InputTest(FaultTest):
    def test_bad_lines_reported_and_skipped(self):
        goods = {}
        lines = []

        def good():
            u = page_url("in-%d.html" % len(lines), ["a.html"])
            goods[len(lines) + 1] = u
            lines.append(u.encode())

        bad = {}

        def badline(data, what):
            bad[len(lines) + 1] = what
            lines.append(data)

        good()
        badline(b"http://127.0.0.1/" + b"a" * 70000, "70 kB line")
        good()
        badline(b"http://127.0.0.1/" + b"b" * (1 << 20), "1 MiB line")
        badline(b"http://127.0.0.1/" + b"c" * 66000, "another long line")
        good()
        badline(b"http://127.0.0.1/\xff\xfe.html", "invalid UTF-8")
        badline(b"http://127.0.0.1/\xc0\xaf.html", "overlong UTF-8")
        badline(b"http://127.0.0.1/\xed\xa0\x80.html", "UTF-8 surrogate")
        badline(b"http://127.0.0.1/\xe2\x82.html", "truncated UTF-8")
        good()
        badline(b"http://127.0.0.1/a\x00b.html", "NUL byte")
        badline(b"\x00", "lone NUL")
        good()
        badline(b"ftp://127.0.0.1/x", "ftp")
        badline(b"mailto:someone@example.invalid", "mailto")
        badline(b"relative/path.html", "relative")
        badline(b"/absolute/path.html", "path only")
        badline(b"//127.0.0.1/scheme-relative.html", "scheme relative")
        badline(b"javascript:alert(1)", "javascript")
        good()
        badline(b"http://127.0.0.1/" + b"d" * 70000, "long last line without newline")
        self.write("urls.txt", b"\n".join(lines))  # no newline after the last line
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        reported = {int(m.group(1)) for m in re.finditer(r"(?m)^urls\.txt:(\d+): \S", r.err)}
        self.assertEqual(sorted(reported), sorted(bad),
                         "lines reported as FILE:LINE: reason (expected: %s)" % bad)
        self.assertEqual(self.output(r), {u: page_expected(u, ["a.html"]) for u in goods.values()})
        self.assertSummary(r, ok=len(goods), failed=len(bad))
        self.assertLess(r.elapsed, common.within(0))
        self.assertLess(len(r.err), 20000, "a bad line should not be echoed whole")

    def test_bad_lines_on_stdin(self):
        good = page_url("in-stdin.html", ["a.html"])
        data = (b"mailto:x@example.invalid\n" + b"http://127.0.0.1/" + b"z" * 70000 + b"\n"
                + good.encode() + b"\n\xff\n")
        r = self.run_areq(["-o", "-", "-"], stdin=data)
        self.assertEqual(r.rc, 1, r)
        for n in (1, 2, 4):
            self.assertRegex(r.err, r"(?m)^<stdin>:%d: \S" % n)
        self.assertNotRegex(r.err, r"(?m)^<stdin>:3:")
        self.assertEqual(by_source(parse_output(self, r.out)), {good: page_expected(good, ["a.html"])})


# --- interruption and output errors -----------------------------------------------------------

class OutputTest(FaultTest):
    def check_signal_under_load(self, sig, code):
        name = signal.Signals(sig).name
        stalls = [SRV.url("/stall?hold=60&%s=%d" % (name, k)) for k in range(50)]
        drips = [SRV.url("/drip?bytes=100000&interval=0.05&%s=%d" % (name, k)) for k in range(30)]
        fast = [page_url("%s-load-%d.html" % (name, k), links=40) for k in range(10)]
        self.write_urls(stalls + drips + fast)
        p = common.start_areq(["-c", "100", "-t", "60", "-o", "out.tsv"], self.tmp)
        try:
            ok = common.wait_for(
                lambda: all(SRV.completed(target_of(u)) for u in fast)
                and all(SRV.count(target_of(u)) for u in stalls + drips), scaled(10))
            self.assertTrue(ok, "areq did not fetch the fast pages and start the slow ones")
            time.sleep(scaled(0.3))
            self.assertIsNone(p.poll(), "areq exited before the signal")
            common.stop_with_signal(self, p, sig, code, " with 80 transfers in flight")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        with open(os.path.join(self.tmp, "out.tsv"), encoding="utf-8", newline="") as f:
            got = by_source(parse_output(self, f.read()))
        self.assertEqual(got, {u: page_expected(u, links=40) for u in fast})

    def test_sigint_with_many_transfers(self):
        self.check_signal_under_load(signal.SIGINT, 130)

    def test_sigterm_with_many_transfers(self):
        self.check_signal_under_load(signal.SIGTERM, 143)

    def test_sigterm_while_waiting_to_retry(self):
        url = SRV.url("/retry-after?key=%s&n=5&after=3600" % unique("sigwait"))
        self.write_urls([url])
        p = common.start_areq(["-o", "out.tsv"], self.tmp)
        try:
            self.assertTrue(common.wait_for(lambda: SRV.completed(target_of(url)), scaled(5)))
            time.sleep(scaled(0.2))
            self.assertIsNone(p.poll(), "areq did not wait for Retry-After")
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(common.within(0))
            except subprocess.TimeoutExpired:
                self.fail("areq still waiting %s s after SIGTERM" % common.within(0))
            self.assertEqual(rc, 143)
            self.assertLess(time.monotonic() - t0, common.within(0))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        with open(os.path.join(self.tmp, "out.tsv"), encoding="utf-8", newline="") as f:
            self.assertEqual(parse_output(self, f.read()), [])

    def test_reader_closes_stdout(self):
        # The names say nothing about pipes: should the stall URL fail (it met the old 10 s
        # low-speed rule under valgrind), its line names it, which is no write error.
        pages = [page_url("reader-%d.html" % k, links=2000) for k in range(100)]
        stall = SRV.url("/stall?hold=60&k=%s" % unique("reader"))
        self.write_urls([stall] + pages)
        p = common.start_areq(["-o", "-", "-t", "60"], self.tmp)
        try:
            first = p.stdout.readline()
            self.assertEqual(first, (common.HEADER + "\n").encode())
            # Close once areq is writing pairs (the header comes before any fetch): its next
            # write then meets the closed pipe at once, however slow the machine made the
            # pages before it (15 s to 56 s under valgrind on a busy machine).
            self.assertIn(b"\t", p.stdout.readline())
            t0 = time.monotonic()
            p.stdout.close()  # like `areq -o - | head -2`
            try:
                rc = p.wait(common.within(0))
            except subprocess.TimeoutExpired:
                self.fail("areq still running %s s after its reader went away" % common.within(0))
            self.assertLess(time.monotonic() - t0, common.within(0))
            err = p.stderr.read().decode("utf-8", "replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
        for line in err.splitlines():
            line = re.sub(r"https?://\S+", "<url>", line)  # judge the words, not the URLs
            self.assertNotRegex(line, r"(?i)pipe|cannot write|write error|stdout|<stdout>|EPIPE",
                                "a closed reader is not an error to report (exit %s)" % rc)

    def test_full_disk(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        # Drips at 2 B/s: only -t 60 would end them (they pass any low-speed rule), so
        # the server's REQ-to-END time of each tells whether the full disk ended the run.
        drips = [SRV.url("/drip?bytes=100000&interval=0.5&k=%s" % unique("full"))
                 for _ in range(3)]
        # No header, and pages that answer after 1 s: the first write, which fails, comes
        # once the drips are in flight.
        pages = [SRV.url("/slow?delay=1&k=%s" % unique("full")) for _ in range(3)]
        self.write_urls(drips + pages)
        r = self.run_areq(["-o", "/dev/full", "--no-header", "-t", "60"], timeout=30)
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(r.err, r"/dev/full.*\w", "no message naming the output")
        self.assertTrue(any(SRV.count(target_of(u)) for u in drips),
                        "no drip was in flight when the disk was found full")
        for u in drips:
            n = SRV.count(target_of(u))
            self.assertLessEqual(n, 1, u)
            if n == 0:
                continue  # stopped before it was asked for: nothing held the run
            held = SRV.held(target_of(u))
            self.assertIsNotNone(held, "the server never saw %s end" % u)
            self.assertLess(held, 30, "a full disk did not end the run: %s was held %.1f s, "
                            "as if until -t 60" % (u, held))


# --- pathological pages -----------------------------------------------------------------------

class PageTest(FaultTest):
    def test_200000_links(self):
        url = SRV.url("/page/big-%s.html?links=200000" % unique("big"))
        self.write_urls([url])
        r, rss = measure_areq(["-o", "out.tsv"], self.tmp)
        self.assertEqual(r.rc, 0, r)
        pairs = parse_output(self, r.read("out.tsv"))
        self.assertEqual(len(pairs), 200000)
        self.assertEqual(by_source(pairs), {url: page_expected(url, links=200000)})
        if r.cpu is not None:
            self.assertLess(r.cpu, 10, "%.1f s of CPU for a page of 200,000 links" % r.cpu)
        else:
            self.assertLess(r.elapsed, scaled(10))  # under valgrind: that it ends at all
        self.assertRssBelow(rss, 200 * 1024, "a page of 200,000 links")

    def test_1mib_href(self):
        url = SRV.url("/bighref?size=%d&k=%s" % (MB, unique("bighref")))
        self.write_urls([url])
        r, rss = measure_areq([], self.tmp)
        self.assertEqual(r.rc, 0, r)
        pairs = parse_output(self, r.read())
        got = by_source(pairs).get(url, set())
        self.assertIn(SRV.url("/before.html"), got)
        self.assertIn(SRV.url("/after.html"), got)
        # The long one may be dropped or written, but if written, whole and right.
        self.assertTrue(got <= {SRV.url("/before.html"), SRV.url("/after.html"),
                                SRV.url("/" + "x" * MB)},
                        "unexpected targets: %r" % [t[:100] for t in got])
        self.assertFieldsClean(pairs)
        self.assertRssBelow(rss)

    def test_nuls_and_odd_characters_in_hrefs(self):
        hrefs = {
            'a.html': "a.html", 'b.html': "b.html",
            'c\td.html': "cd.html",                # tab and newlines are removed
            'e\nf.html': "ef.html", 'o\r\np.html': "op.html",
            ' \t g h.html \n': "g%20h.html",        # edges trimmed, inner space escaped
            'i&quot;j.html': "i%22j.html",
            's<t>u.html': "s%3Ct%3Eu.html",
        }
        body = "\x00".join('<a href="%s">x</a>' % h for h in hrefs)
        body += "\x00\x00<a href='k\"l.html'>x</a>\x00<p>\x00</p>"
        body += "".join('<a href="n%d.html">n</a>\x00' % k for k in range(300))
        url = html_url("odd/src.html", body)
        base = SRV.url("/html/odd/")
        want = {base + v for v in hrefs.values()} | {base + "k%22l.html"}
        want |= {base + "n%d.html" % k for k in range(300)}
        self.write_urls([url])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        pairs = parse_output(self, r.read())
        self.assertFieldsClean(pairs)
        self.assertEqual(by_source(pairs), {url: want})


if __name__ == "__main__":
    common.main()
