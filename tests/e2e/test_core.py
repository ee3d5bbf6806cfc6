#!/usr/bin/env python3
"""End-to-end tests of areq's core behaviour, driving the real binary against the loopback
fixture server (tests/fixture/server.py). Nothing leaves 127.0.0.1.

Run by hand from the repository root:
    AREQ_BIN=build/areq python3 tests/e2e/test_core.py            # all
    AREQ_BIN=build/areq python3 tests/e2e/test_core.py -v FetchTest.test_redirects
    AREQ_BIN=build/areq AREQ_WRAPPER="valgrind --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect -q" python3 tests/e2e/test_core.py
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
from urllib.parse import quote, urljoin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, by_source, parse_output, scaled, site, target_of  # noqa: E402

PAGES, LINKS, SEED = 50, 20, "7"
SRV = None


setUpModule, tearDownModule = common.fixture_module(
    globals(), "--pages", str(PAGES), "--links", str(LINKS), "--seed", SEED)


def site_url(i):
    return SRV.url("/site/p%d.html" % i)


def site_expected(i):
    """Targets of site page i, computed with urljoin (which agrees with areq on the plain
    variant's spellings)."""
    url = site_url(i)
    return {urljoin(url, l.href) for l in site.page_links(i, PAGES, LINKS, SEED, SRV.port)}


def page_url(name, hrefs=(), links=0):
    return common.page_url(SRV, name, hrefs, links)


page_expected = common.page_expected


class CliTest(AreqTest):
    def test_help(self):
        for opt in ("-h", "--help"):
            r = self.run_areq([opt])
            self.assertEqual(r.rc, 0, r)
            for word in ("--concurrency", "--output", "--timeout", "--max-redirs"):
                self.assertIn(word, r.out, "%s output does not mention %s" % (opt, word))

    def test_version(self):
        for opt in ("-V", "--version"):
            r = self.run_areq([opt])
            self.assertEqual(r.rc, 0, r)
            self.assertRegex(r.out.strip(), r"^areq \d+\.\d+\.\d+$")

    def test_usage_errors_exit_2_and_fetch_nothing(self):
        url = page_url("usage-never.html", ["x.html"])
        self.write_urls([url])
        bad = [["--bogus"], ["-c", "abc"], ["-c", "10x"], ["--concurrency", ""],
               ["-t", "abc"], ["-t", "-1"], ["--timeout", "1s"], ["--max-redirs", "x"],
               ["--connect-timeout", "abc"], ["-c"]]
        for args in bad:
            r = self.run_areq(args)
            self.assertEqual(r.rc, 2, "areq %s: %r" % (args, r))
            self.assertTrue(r.err.strip(), "areq %s: no message on stderr" % args)
        self.assertEqual(SRV.count(target_of(url)), 0, "a usage error still fetched URLs")

    def test_missing_default_input(self):
        r = self.run_areq([])
        self.assertEqual(r.rc, 2, r)
        self.assertIn("urls.txt", r.err)

    def test_unreadable_input_files(self):
        os.mkdir(os.path.join(self.tmp, "adir"))
        for name in ("missing.txt", "adir"):
            r = self.run_areq([name])
            self.assertEqual(r.rc, 2, "%s: %r" % (name, r))
            self.assertIn(name, r.err)


class FetchTest(AreqTest):
    def test_site_pages_exact(self):
        idx = [0, 1, 2, 3, 17, 49]
        urls = [site_url(i) for i in idx]
        self.write_urls(urls)
        r = self.run_areq(["-o", "out.tsv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "", "nothing belongs on stdout with -o FILE")
        got = by_source(parse_output(self, r.read("out.tsv")))
        self.assertEqual(got, {site_url(i): site_expected(i) for i in idx})
        self.assertSummary(r, ok=len(idx), failed=0)

    def test_http_error_statuses(self):
        good = page_url("status-good.html", ["a.html"])
        bad = {SRV.url("/status/404"): "404", SRV.url("/status/500"): "500",
               SRV.url("/status/503"): "503"}
        self.write_urls([good] + list(bad))
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for url, code in bad.items():
            self.assertFailureReported(r, url, code)
        got = by_source(parse_output(self, r.read()))
        self.assertEqual(got, {good: page_expected(good, ["a.html"])},
                         "failed responses must not be parsed")
        self.assertSummary(r, ok=1, failed=3)

    def test_redirects_resolve_against_final_url(self):
        cases = {}
        for code in (301, 302, 307):
            dest = "/page/sub%d/p.html?href=x.html" % code
            src = SRV.url("/redirect?to=%s&code=%d" % (quote(dest, safe=""), code))
            cases[src] = {SRV.url("/page/sub%d/x.html" % code)}
        dest = SRV.url("/page/abs/p.html?href=y.html")
        cases[SRV.url("/redirect?to=" + quote(dest, safe=""))] = {SRV.url("/page/abs/y.html")}
        cases[SRV.url("/redirect-chain/3")] = {SRV.url("/redirect-chain/end.html")}
        self.write_urls(list(cases))
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read())), cases,
                         "sources are the input URLs; targets resolve against the final URL")

    def test_redirect_loops_fail(self):
        good = page_url("loop-good.html", ["a.html"])
        loops = [SRV.url("/loop"), SRV.url("/loop/a")]
        self.write_urls([good] + loops)
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for u in loops:
            self.assertFailureReported(r, u)
        self.assertEqual(set(by_source(parse_output(self, r.read()))), {good})
        n = SRV.count("/loop")
        self.assertTrue(2 <= n <= 12, "/loop requested %d times with --max-redirs 10" % n)

    def test_max_redirs(self):
        self.write_urls([SRV.url("/redirect-chain/2"), SRV.url("/redirect-chain/3")])
        r = self.run_areq(["--max-redirs", "2"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, SRV.url("/redirect-chain/3"))
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {SRV.url("/redirect-chain/2"): {SRV.url("/redirect-chain/end.html")}})
        r = self.run_areq(["--max-redirs", "3"])
        self.assertEqual(r.rc, 0, r)
        self.write_urls([SRV.url("/redirect-chain/10"), SRV.url("/redirect-chain/11")])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, SRV.url("/redirect-chain/11"))
        self.assertEqual(set(by_source(parse_output(self, r.read()))),
                         {SRV.url("/redirect-chain/10")}, "the default --max-redirs is 10")

    def test_redirect_to_file_scheme_fails(self):
        url = SRV.url("/redirect-file")
        self.write_urls([url])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, url)
        self.assertEqual(parse_output(self, r.read()), [])
        self.assertNotIn("root:", r.err + r.out)

    def test_timeout(self):
        good = page_url("timeout-good.html", ["a.html"])
        slow = [SRV.url("/slow?delay=5&t=1"), SRV.url("/stall?t=1"),
                SRV.url("/drip?bytes=1000&interval=0.05&t=1")]
        self.write_urls(slow + [good])
        r = self.run_areq(["-t", "1", "--retries", "0"])  # -t bounds one transfer
        self.assertEqual(r.rc, 1, r)
        for u in slow:
            self.assertFailureReported(r, u)
        self.assertEqual(set(by_source(parse_output(self, r.read()))), {good})
        self.assertGreaterEqual(r.elapsed, 0.9, "gave up before the timeout")
        # -t 1 bounded the transfers, as the server saw them end (/slow is judged by its
        # failure: after 5 s it would have succeeded).
        for u in slow[1:]:
            held = SRV.held(common.target_of(u))
            self.assertIsNotNone(held, "the server never saw %s end" % u)
            self.assertLess(held, 1 + common.SERVER_SLACK, "-t 1 did not bound %s" % u)
        self.assertSummary(r, ok=1, failed=3)

    def test_fractional_timeout(self):
        url = SRV.url("/slow?delay=3&t=frac")
        stall = SRV.url("/stall?hold=30&t=frac")
        self.write_urls([url, stall])
        r = self.run_areq(["-t", "0.5", "--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, url)  # -t 0 (none) would have waited the 3 s out
        self.assertFailureReported(r, stall)
        self.assertGreaterEqual(r.elapsed, 0.45, "gave up before -t 0.5")
        held = SRV.held(common.target_of(stall))
        self.assertIsNotNone(held, "the server never saw the stalled request end")
        self.assertLess(held, 0.5 + common.SERVER_SLACK, "-t 0.5 was taken for more")

    def test_connect_timeout(self):
        with common.Blackhole() as bh:
            url = "http://127.0.0.1:%d/never.html" % bh.port
            self.write_urls([url])
            r = self.run_areq(["--connect-timeout", "1", "-t", "30", "--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, url)
        self.assertGreaterEqual(r.elapsed, 0.9)
        self.assertLess(r.elapsed, common.within(1), "--connect-timeout 1 did not bound it")

    def test_transport_errors(self):
        good = page_url("transport-good.html", ["a.html"])
        refused = "http://127.0.0.1:%d/refused.html" % common.refused_port()
        bad = [SRV.url(p) for p in ("/close-mid-body", "/reset", "/garbage", "/bad-chunked")]
        bad.append(refused)
        self.write_urls(bad + [good])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for u in bad:
            self.assertFailureReported(r, u)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {good: page_expected(good, ["a.html"])})
        self.assertSummary(r, ok=1, failed=len(bad))
        self.assertLess(r.elapsed, common.within(1.5))  # retries: at most 0.5 + 1 s of backoff

    def test_content_types(self):
        urls = [SRV.url(p) for p in ("/binary", "/text", "/no-content-type", "/xhtml")]
        self.write_urls(urls)
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, "a body that is not HTML is not a failure: %r" % r)
        self.assertEqual(by_source(parse_output(self, r.read())), {
            SRV.url("/no-content-type"): {SRV.url("/from-no-content-type.html")},
            SRV.url("/xhtml"): {SRV.url("/from-xhtml.html")}})
        self.assertSummary(r, failed=0)

    def test_html_content_type_override(self):
        # text/html with parameters still counts as HTML; text/plain from /page does not.
        html = page_url("ct-html.html", ["a.html"]) + "&ctype=" + quote("TEXT/HTML;charset=UTF-8", safe="")
        plain = page_url("ct-plain.html", ["a.html"]) + "&ctype=text%2Fplain"
        self.write_urls([html, plain])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {html: {SRV.url("/page/a.html")}})

    def test_target_normalisation(self):
        o = SRV.origin
        hrefs = {
            "HTTP://127.0.0.1:%d/X/./y/../z.html#frag" % SRV.port: o + "/X/z.html",
            "#only": None,
            "mailto:someone@example.invalid": None,
            "javascript:void(0)": None,
            "ftp://127.0.0.1/f.txt": None,
            "http://127.0.0.1:80/d.html": "http://127.0.0.1/d.html",
            "https://127.0.0.1:443/e.html": "https://127.0.0.1/e.html",
            "http://127.0.0.1:%d" % SRV.port: o + "/",
            "f%7e%2f.html": o + "/page/tn/f%7E%2F.html",
            "../up.html": o + "/page/up.html",
            "g.html?q=1#x": o + "/page/tn/g.html?q=1",
            "HTTP://EXAMPLE.INVALID/Path": "http://example.invalid/Path",
            "p.html": o + "/page/tn/p.html",
            "./p.html": o + "/page/tn/p.html",
        }
        url = page_url("tn/src.html", list(hrefs))
        self.write_urls([url])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {url: {v for v in hrefs.values() if v}})

    def test_source_is_normalised_input(self):
        raw = "HTTP://127.0.0.1:%d/page/Norm/./a/../src.html?href=t.html" % SRV.port
        norm = SRV.url("/page/Norm/src.html?href=t.html")
        self.write_urls([raw])
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {norm: {SRV.url("/page/Norm/t.html")}})


class InputTest(AreqTest):
    def test_stdin_to_stdout(self):
        urls = [site_url(4), site_url(5)]
        r = self.run_areq(["-o", "-", "-"], stdin="".join(u + "\n" for u in urls))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.out)),
                         {site_url(4): site_expected(4), site_url(5): site_expected(5)})
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "foundurls.txt")))
        self.assertSummary(r, ok=2, failed=0)

    def test_duplicates_fetched_once(self):
        url = page_url("dedup-once.html", ["a.html", "b.html"])
        other = page_url("dedup-other.html", ["c.html"])
        self.write("urls.txt", "%s\n%s\n  %s  \n%s\n" % (url, url, url, other))
        self.write("more.txt", "%s\n%s\n" % (other, url))
        r = self.run_areq(["urls.txt", "more.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(SRV.count(target_of(url)), 1, "a URL listed several times was "
                         "fetched %d times" % SRV.count(target_of(url)))
        self.assertEqual(SRV.count(target_of(other)), 1)
        pairs = parse_output(self, r.read())  # checks one block per source
        self.assertEqual(by_source(pairs), {url: page_expected(url, ["a.html", "b.html"]),
                                            other: page_expected(other, ["c.html"])})
        self.assertSummary(r, ok=2, failed=0)

    def test_bom_crlf_comments_blank_lines(self):
        urls = [page_url("fmt-%d.html" % k, ["a.html"]) for k in range(4)]
        text = ("\ufeff%s\r\n# a comment\r\n\r\n   \r\n  %s\t\r\n   # indented comment\n%s\n\n%s"
                % tuple(urls))  # the last line has no newline
        self.write("urls.txt", text.encode("utf-8"))
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {u: page_expected(u, ["a.html"]) for u in urls})
        self.assertSummary(r, ok=4, failed=0)

    def test_bad_lines_reported_with_file_and_line(self):
        good1 = page_url("badline-1.html", ["a.html"])
        good2 = page_url("badline-2.html", ["b.html"])
        lines = ["# list", good1, "ftp://127.0.0.1:%d/x" % common.refused_port(), "",
                 "not a url", "/relative/path", "http://", good2]
        self.write_urls(lines)
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        for n in (3, 5, 6, 7):
            self.assertRegex(r.err, r"(?m)^urls\.txt:%d: \S" % n)
        for n in (1, 2, 4, 8):
            self.assertNotRegex(r.err, r"(?m)^urls\.txt:%d:" % n)
        self.assertEqual(by_source(parse_output(self, r.read())),
                         {good1: page_expected(good1, ["a.html"]),
                          good2: page_expected(good2, ["b.html"])})
        self.assertSummary(r, ok=2, failed=4)

    def test_bad_line_names_the_file_given(self):
        good = page_url("badname.html", ["a.html"])
        self.write_urls([good, "nope"], name="list.txt")
        r = self.run_areq(["list.txt"])
        self.assertEqual(r.rc, 1, r)
        self.assertRegex(r.err, r"(?m)^list\.txt:2: \S")
        r = self.run_areq(["-o", "-", "-"], stdin="nope too\n%s\n" % good)
        self.assertEqual(r.rc, 1, r)
        self.assertRegex(r.err, r"(?m)^<stdin>:1: \S")
        self.assertEqual(set(by_source(parse_output(self, r.out))), {good})


class OutputTest(AreqTest):
    def test_no_header(self):
        url = page_url("nohdr.html", ["a.html", "b.html"])
        self.write_urls([url])
        r = self.run_areq(["--no-header", "-o", "x.tsv"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read("x.tsv"), header=False)),
                         {url: page_expected(url, ["a.html", "b.html"])})

    def test_header_only_when_nothing_found(self):
        self.write_urls([SRV.url("/text")])
        r = self.run_areq(["--output", "o.tsv"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.read("o.tsv"), common.HEADER + "\n")

    def test_output_errors_exit_3(self):
        self.write_urls([page_url("outerr.html", links=50)])
        r = self.run_areq(["-o", "/nonexistent-dir/x"])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("/nonexistent-dir/x", r.err)
        if os.path.exists("/dev/full"):
            r = self.run_areq(["-o", "/dev/full"])
            self.assertEqual(r.rc, 3, r)

    def test_quiet(self):
        good = page_url("quiet.html", ["a.html"])
        self.write_urls([good, SRV.url("/status/404"), "bad line"])
        r = self.run_areq(["-q"])
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.err, "", "-q must leave only fatal errors on stderr")
        self.assertEqual(set(by_source(parse_output(self, r.read()))), {good})

    def test_verbose(self):
        urls = [page_url("verbose-%d.html" % k, ["a.html"]) for k in range(3)]
        self.write_urls(urls)
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        for u in urls:
            self.assertNotIn(u, r.err, "a fetched URL is mentioned without -v")
        r = self.run_areq(["-v"])
        self.assertEqual(r.rc, 0, r)
        for u in urls:
            self.assertIn(u, r.err, "-v: no line for %s" % u)
        self.assertSummary(r, ok=3, failed=0)


class ConcurrencyTest(AreqTest):
    def test_concurrency_limit(self):
        delay = 0.3 if not common.WRAPPER else 2
        for c, n in ((1, 4), (3, 6)):
            prefix = "/slow?delay=%s&c%d=" % (delay, c)
            urls = [SRV.url(prefix + str(k)) for k in range(n)]
            self.write_urls(urls)
            r = self.run_areq(["-c", str(c)])
            self.assertEqual(r.rc, 0, r)
            most = SRV.max_in_flight(prefix)
            self.assertLessEqual(most, c, "-c %d: %d requests at once" % (c, most))
            self.assertGreaterEqual(most, min(c, 2), "-c %d: requests never overlapped" % c)
            self.assertGreaterEqual(r.elapsed, delay * n / c - 0.05)

    def test_default_concurrency_is_100(self):
        delay = 0.5 if not common.WRAPPER else 3
        prefix = "/slow?delay=%s&dflt=" % delay
        self.write_urls([SRV.url(prefix + str(k)) for k in range(150)])
        r = self.run_areq([], timeout=60)
        self.assertEqual(r.rc, 0, r)
        most = SRV.max_in_flight(prefix)
        self.assertLessEqual(most, 100)
        self.assertGreaterEqual(most, 50, "only %d requests at once with the default -c" % most)


    def test_crowded_run_reads_whole_bodies(self):
        # -c 10000 shrinks each transfer's receive buffer to 1 KiB: bodies many times that
        # size (the site's pages, a page of 3,000 links) must still arrive whole, and small
        # bodies (scanned on the loop, not the pool) must give all their pairs too.
        idx = [0, 1, 2]
        big = page_url("crowd-big.html", links=3000)
        small = page_url("crowd-small.html", hrefs=["a.html", "/b", "//other.example/c"])
        self.write_urls([site_url(i) for i in idx] + [big, small])
        r = self.run_areq(["-c", "10000", "-o", "out.tsv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        got = by_source(parse_output(self, r.read("out.tsv")))
        want = {site_url(i): site_expected(i) for i in idx}
        want[big] = page_expected(big, links=3000)
        want[small] = page_expected(small, hrefs=["a.html", "/b", "//other.example/c"])
        self.assertEqual(got, want)


class SignalTest(AreqTest):
    def check_signal(self, sig, code):
        name = signal.Signals(sig).name
        stalls = [SRV.url("/stall?hold=60&%s=%d" % (name, k)) for k in range(3)]
        fast = [page_url("%s-%d.html" % (name, k), links=5) for k in range(3)]
        self.write_urls(stalls + fast)
        p = common.start_areq(["-o", "out.tsv", "-t", "60"], self.tmp)
        try:
            ok = common.wait_for(
                lambda: all(SRV.completed(target_of(u)) for u in fast)
                and all(SRV.count(target_of(u)) for u in stalls), scaled(10))
            self.assertTrue(ok, "areq did not fetch the fast pages and start the slow ones")
            time.sleep(scaled(0.3))  # let it write the fast pages' blocks
            self.assertIsNone(p.poll(), "areq exited before the signal")
            common.stop_with_signal(self, p, sig, code)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        with open(os.path.join(self.tmp, "out.tsv"), encoding="utf-8", newline="") as f:
            got = by_source(parse_output(self, f.read()))
        self.assertEqual(got, {u: page_expected(u, links=5) for u in fast},
                         "output must hold every completed block and nothing else")

    def test_sigint_130(self):
        self.check_signal(signal.SIGINT, 130)

    def test_sigterm_143(self):
        self.check_signal(signal.SIGTERM, 143)


class AcceptanceTest(AreqTest):
    """areq with no arguments agrees with the reference program on the plain site."""

    def reference_pairs(self, urls):
        if not os.path.isfile(common.REFERENCE):
            self.skipTest("reference program not found at %s (areq.py of Real Python's "
                          "asyncio walk-through, realpython/materials asyncio-walkthrough; "
                          "set AREQ_REFERENCE to its path)" % common.REFERENCE)
        if not os.access(common.SYSTEM_PYTHON, os.X_OK):
            self.skipTest("%s not found (the reference needs it)" % common.SYSTEM_PYTHON)
        chk = subprocess.run([common.SYSTEM_PYTHON, "-c", "import aiohttp, aiofiles"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if chk.returncode != 0:
            self.skipTest("aiohttp/aiofiles missing for %s (apt-get install python3-aiohttp "
                          "python3-aiofiles)" % common.SYSTEM_PYTHON)
        d = os.path.join(self.tmp, "reference")
        os.mkdir(d)
        shutil.copy(common.REFERENCE, d)
        with open(os.path.join(d, "urls.txt"), "w") as f:
            f.write("".join(u + "\n" for u in urls))
        p = subprocess.run([common.SYSTEM_PYTHON, "areq.py"], cwd=d, env=common.areq_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(os.path.join(d, "foundurls.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], common.HEADER)
        return {tuple(l.split("\t")) for l in lines[1:]}

    def test_same_pairs_as_reference(self):
        urls = [site_url(i) for i in range(PAGES)]
        self.write_urls(urls)
        r = self.run_areq([])
        self.assertEqual(r.rc, 0, r)
        ours = set(parse_output(self, r.read()))
        expected = {(site_url(i), t) for i in range(PAGES) for t in site_expected(i)}
        self.assertEqual(ours, expected)
        self.assertSummary(r, ok=PAGES, failed=0)
        theirs = self.reference_pairs(urls)
        self.assertEqual(ours, theirs)

        missing = SRV.url("/status/404")
        refused = "http://127.0.0.1:%d/site/p0.html" % common.refused_port()
        self.write_urls(urls[:25] + [missing, refused] + urls[25:])
        r = self.run_areq([])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, missing, "404")
        self.assertFailureReported(r, refused)
        self.assertEqual(set(parse_output(self, r.read())), expected)
        self.assertSummary(r, ok=PAGES, failed=2)


if __name__ == "__main__":
    common.main()
