#!/usr/bin/env python3
"""End-to-end tests of bounded memory (issue 16, items 3 and 10): header and trailer bytes
per transfer are capped, failures that libcurl words misleadingly are named in areq's own
words, and a crawl of link-dense pages stops admitting links at the frontier's memory budget.
Routes: /mem16/... in tests/fixture/server.py. Peak RSS is measured as in test_faults.py
(measure_areq). --max-queue 64k makes a small crawl reach the budget.
Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_memory.py -v
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, scaled  # noqa: E402
from test_faults import measure_areq  # noqa: E402

SRV = None
MB = 1 << 20


setUpModule, tearDownModule = common.fixture_module(globals())


class MemoryTest(AreqTest):
    def assertFailedWith(self, res, url, reason):
        for line in res.err.splitlines():
            i = line.find(url)
            if i >= 0 and re.search(reason, line[i + len(url):]):
                return
        self.fail("no stderr line names %s with /%s/; stderr:\n%s" % (url, reason, res.err[-3000:]))

    def assertRssBelow(self, rss_kb, limit_mb):
        if rss_kb is None:
            return  # under AREQ_WRAPPER the figure would be the wrapper's
        if common.is_asan_build():
            return  # AddressSanitizer's shadow memory and quarantine are not areq's
        self.assertLess(rss_kb, limit_mb * 1024, "peak RSS of areq was %.1f MB (limit %d MB)"
                        % (rss_kb / 1024, limit_mb))


class HeaderCapTest(MemoryTest):
    def test_endless_trailers_are_cut_off(self):
        # 400 MB of trailer lines: libcurl alone held them all (320 MB for 300 MB).
        bad = SRV.url("/mem16/trailers?max=400000000")
        good = SRV.url("/page/mem16-trailers-good.html?href=a.html")
        self.write_urls([bad, good])
        r, rss = measure_areq([], self.tmp, timeout=60)
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, bad, r"^: response headers too large")
        self.assertSummary(r, ok=1, failed=1)
        self.assertRssBelow(rss, 100)

    def test_many_headers_are_named_in_our_words(self):
        # 290 KB of headers: under libcurl's own total cap, over ours.
        bad = SRV.url("/mem16/headers?n=290&size=1000")
        fine = SRV.url("/mem16/headers?n=100&size=1000")
        self.write_urls([bad, fine])
        r, _ = measure_areq([], self.tmp)
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, bad, r"^: response headers too large")
        self.assertSummary(r, ok=1, failed=1)

    def test_giant_header_line_is_not_out_of_memory(self):
        bad = SRV.url("/mem16/headers?n=1&size=200000")
        self.write_urls([bad])
        r, _ = measure_areq([], self.tmp)
        self.assertEqual(r.rc, 1, r)
        self.assertFailedWith(r, bad, r"^: response headers too large")
        self.assertNotIn("Out of memory", r.err)

    def test_corrupt_encoded_body_is_named(self):
        urls = [SRV.url("/mem16/bad-encoding?enc=%s" % e)
                for e in ("br", "br-trailing", "gzip", "deflate")]
        self.write_urls(urls)
        r, _ = measure_areq([], self.tmp)
        self.assertEqual(r.rc, 1, r)
        for u in urls:
            self.assertFailedWith(r, u, r"^: body could not be decoded")
        self.assertNotIn("to disk", r.err)  # libcurl's words for br-trailing
        self.assertSummary(r, ok=0, failed=4)


class QueueBudgetTest(MemoryTest):
    def test_wide_crawl_stops_admitting_at_the_budget(self):
        # Pages of 200 new links each, an unbounded graph: at -d 2 the second level alone
        # holds 40,000 links. A budget of 64 KiB holds a few hundred URLs.
        start = SRV.url("/mem16/wide/budget/?n=200")
        self.write_urls([start])
        r, rss = measure_areq(["-d", "2", "--max-queue", "64k"], self.tmp, timeout=120)
        self.assertEqual(r.rc, 0, r)
        said = [l for l in r.err.splitlines() if "reached its memory budget (64 KiB)" in l]
        self.assertEqual(len(said), 1, r.err[-3000:])  # once, for the run
        summary = r.err_lines()[-1]
        m = re.search(r"(\d+) links not followed: memory budget", summary)
        self.assertTrue(m, summary)
        fetched = len({e[3] for e in SRV.requests() if e[3].startswith("/mem16/wide/budget")})
        # The 200 pages at depth 1 found 40,000 distinct links: those not fetched (the start
        # page and its 200 links were) are the ones counted.
        self.assertEqual(int(m.group(1)), 200 * 200 - (fetched - 201), summary)
        # What was fetched: the start page, its 200 links, and what the budget let in.
        self.assertLess(fetched, 1 + 200 + (64 << 10) // 64, summary)
        self.assertRssBelow(rss, 60)


if __name__ == "__main__":
    common.main()
