#!/usr/bin/env python3
"""End-to-end tests of the crawl-state store, --state (issue 14): a re-run asks conditionally
and writes the stored pairs on 304; changed pages are fetched again; other options mean plain
requests; files that are not a store, and a store in use, are refused. The fixture server
answers /site/ pages with ETag and Last-Modified and counts what it was asked (its COND log
lines, /cond14/stats), which is what these tests judge.

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_state.py -v
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, scaled, wait_for  # noqa: E402

SRV = None
PAGES = 40


setUpModule, tearDownModule = common.fixture_module(
    globals(), "--pages", str(PAGES), "--links", "12", "--robots", "404")


def lines_of(text):
    """The output's lines, the header apart, as a sorted list (a multiset)."""
    lines = text.split("\n")
    assert lines[-1] == "", "the output ends in a cut line"
    return sorted(lines[1:-1])


class StateTest(AreqTest):
    def setUp(self):
        super().setUp()
        SRV.cond14("reset")
        self.start_url = SRV.url("/site/p0.html")

    def crawl(self, out, *extra, state="state.db", depth=2, concurrency=None):
        args = ["-o", out, "-d", str(depth)]
        if state is not None:
            args += ["--state", state]
        if concurrency is not None:
            args += ["-c", str(concurrency)]
        return self.run_areq(args + list(extra) + [self.start_url], timeout=scaled(120))

    def cond_since(self, mark):
        return SRV.conditional()[mark:]

    def test_unchanged_rerun_is_identical_and_conditional(self):
        mark = len(SRV.conditional())
        first = self.crawl("a.tsv", concurrency=1)
        self.assertEqual(first.rc, 0, first)
        pages = len(self.cond_since(mark))
        self.assertGreater(pages, PAGES // 2)
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv", "-v", concurrency=1)
        self.assertEqual(second.rc, 0, second)
        self.assertEqual(second.read("b.tsv"), first.read("a.tsv"))
        asked = self.cond_since(mark)
        self.assertEqual(len(asked), pages, asked)
        for conn, method, target, inm, ims, status, _ in asked:
            self.assertIsNotNone(inm, "%s asked without If-None-Match" % target)
            self.assertIsNotNone(ims, "%s asked without If-Modified-Since" % target)
            self.assertEqual(status, 304, target)
        self.assertIn("%d not modified (304)" % pages, second.err)

    def test_unchanged_rerun_concurrent_same_lines(self):
        first = self.crawl("a.tsv")
        self.assertEqual(first.rc, 0, first)
        plain = self.crawl("plain.tsv", state=None)
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv")
        self.assertEqual(second.rc, 0, second)
        self.assertEqual(lines_of(second.read("b.tsv")), lines_of(plain.read("plain.tsv")))
        self.assertEqual(len(set(lines_of(second.read("b.tsv")))),
                         len(lines_of(second.read("b.tsv"))), "a line came twice")
        self.assertTrue(all(c[5] == 304 for c in self.cond_since(mark)))

    def test_concurrency_limit_holds_while_the_store_answers(self):
        """With --state a page asks the store before it takes a transfer slot, so more pages
        than -c are under way at once: the server must still never see more than -c
        requests open, on a first run (nothing stored) and on a re-run (every page looked
        up and found; /slow sends no validators, so it is fetched whole again)."""
        delay = 0.3 if not common.WRAPPER else 2
        c, n = 3, 9
        prefix = "/slow?delay=%s&state-c%d=" % (delay, c)
        self.write_urls([SRV.url(prefix + str(k)) for k in range(n)])
        for run in ("first", "again"):
            mark = len(SRV.events())
            r = self.run_areq(["-c", str(c), "--state", "slow.db", "-o", run + ".tsv", "-v"],
                              timeout=scaled(120))
            self.assertEqual(r.rc, 0, r)
            events = SRV.events()[mark:]
            most = common.max_in_flight(events, prefix)
            self.assertLessEqual(most, c, "%s run: %d requests at once under -c %d"
                                 % (run, most, c))
            self.assertGreaterEqual(most, 2, "%s run: requests never overlapped" % run)
            self.assertEqual(sum(1 for e in events if e[0] == "REQ" and e[3].startswith(prefix)),
                             n, "%s run" % run)
        self.assertIn("%d unchanged (same body)" % n, r.err)  # each page was found stored

    def test_changed_pages_are_fetched_again(self):
        first = self.crawl("a.tsv")
        self.assertEqual(first.rc, 0, first)
        changed = SRV.cond14("change", pages="3,7,11").split()
        self.assertEqual(changed, ["3", "7", "11"])
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv", "-v")
        self.assertEqual(second.rc, 0, second)
        plain = self.crawl("plain.tsv", state=None)
        self.assertEqual(lines_of(second.read("b.tsv")), lines_of(plain.read("plain.tsv")))
        self.assertNotEqual(lines_of(second.read("b.tsv")), lines_of(first.read("a.tsv")))
        # Asked with validators and answered with a body: exactly the changed pages (the
        # pages their new links lead to, not stored yet, are asked for plainly).
        asked = self.cond_since(mark)
        fresh = {c[2].split("?")[0] for c in asked if c[5] == 200 and c[3] is not None}
        self.assertEqual(fresh, {"/site/p3.html", "/site/p7.html", "/site/p11.html"})
        self.assertTrue(all(c[5] == 200 for c in asked if c[3] is None))
        # A third run: the changed pages are stored again, so everything is a 304.
        mark = len(SRV.conditional())
        third = self.crawl("c.tsv")
        self.assertEqual(third.rc, 0, third)
        self.assertEqual(lines_of(third.read("c.tsv")), lines_of(plain.read("plain.tsv")))
        self.assertTrue(all(c[5] == 304 for c in self.cond_since(mark)))

    def test_other_options_mean_plain_requests(self):
        mark = len(SRV.conditional())
        first = self.crawl("a.tsv")
        self.assertEqual(first.rc, 0, first)
        pages = len(self.cond_since(mark))
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv", "--keep-fragments")
        self.assertEqual(second.rc, 0, second)
        asked = self.cond_since(mark)
        self.assertEqual(len(asked), pages)
        for c in asked:
            self.assertIsNone(c[3], "asked conditionally under other options: %r" % (c,))
            self.assertIsNone(c[4], "asked conditionally under other options: %r" % (c,))
            self.assertEqual(c[5], 200)
        # Back to the first options: the pages are now stored under --keep-fragments.
        mark = len(SRV.conditional())
        third = self.crawl("c.tsv")
        self.assertTrue(all(c[3] is None for c in self.cond_since(mark)))

    def test_a_run_without_state_asks_plainly(self):
        first = self.crawl("a.tsv")
        self.assertEqual(first.rc, 0, first)
        mark = len(SRV.conditional())
        plain = self.crawl("b.tsv", state=None)
        self.assertEqual(plain.rc, 0, plain)
        self.assertTrue(all(c[3] is None and c[4] is None for c in self.cond_since(mark)))

    def test_max_age_asks_nothing_of_fresh_pages(self):
        mark = len(SRV.conditional())
        first = self.crawl("a.tsv")
        self.assertEqual(first.rc, 0, first)
        pages = len(self.cond_since(mark))
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv", "--max-age", "1h", "-v")
        self.assertEqual(second.rc, 0, second)
        self.assertEqual(self.cond_since(mark), [], "a page fetched a moment ago was asked for")
        self.assertEqual(lines_of(second.read("b.tsv")), lines_of(first.read("a.tsv")))
        self.assertIn("%d not requested (--max-age)" % pages, second.err)
        # A page changed meanwhile is not seen: that is what --max-age means.
        SRV.cond14("change", pages="0")
        mark = len(SRV.conditional())
        third = self.crawl("c.tsv", "--max-age", "90m")
        self.assertEqual(self.cond_since(mark), [])
        self.assertEqual(lines_of(third.read("c.tsv")), lines_of(first.read("a.tsv")))
        # Past the age (1 s, after a pause), every page is asked for again, conditionally.
        time.sleep(2.1)
        mark = len(SRV.conditional())
        fourth = self.crawl("d.tsv", "--max-age", "1s")
        self.assertEqual(fourth.rc, 0, fourth)
        asked = self.cond_since(mark)
        self.assertGreaterEqual(len(asked), pages)
        self.assertIn("/site/p0.html", [c[2] for c in asked if c[5] == 200 and c[3]])

    def test_etag_churn_and_unsolicited_304_are_counted(self):
        import re
        SRV.cond14("mode", m="etag-churn")
        first = self.crawl("a.tsv", "-v")
        self.assertEqual(first.rc, 0, first)
        pages = int(re.search(r"(\d+) new,", first.err).group(1))
        second = self.crawl("b.tsv", "-v")
        self.assertEqual(second.rc, 0, second)
        self.assertEqual(lines_of(second.read("b.tsv")), lines_of(first.read("a.tsv")))
        self.assertIn("%d unchanged (same body)" % pages, second.err)
        self.assertIn("%d new ETags for the same body" % pages, second.err)
        # A server that answers 304 to a request without validators: a failure, counted.
        SRV.cond14("mode", m="always-304")
        third = self.crawl("c.tsv", "-v", state="other.db", depth=0)
        self.assertEqual(third.rc, 1, third)
        self.assertIn("1 304s without validators", third.err)
        self.assertEqual(SRV.cond14("stats")["unsolicited_304"], 1)

    def test_save_sends_validators_only_for_bodies_in_place(self):
        out = os.path.join(self.tmp, "saved", "127.0.0.1:%d" % SRV.port, "site")
        first = self.crawl("a.tsv", "--save", "saved", depth=0)
        self.assertEqual(first.rc, 0, first)
        self.assertTrue(os.path.isfile(os.path.join(out, "p0.html")))
        mark = len(SRV.conditional())
        second = self.crawl("b.tsv", "--save", "saved", depth=0)
        self.assertEqual(second.rc, 0, second)
        self.assertEqual([c[5] for c in self.cond_since(mark)], [304])
        self.assertEqual(second.read("b.tsv"), first.read("a.tsv"))
        # The saved body is gone: the page is asked for plainly, and saved again.
        os.unlink(os.path.join(out, "p0.html"))
        mark = len(SRV.conditional())
        third = self.crawl("c.tsv", "--save", "saved", depth=0)
        self.assertEqual(third.rc, 0, third)
        asked = self.cond_since(mark)
        self.assertEqual([(c[3], c[5]) for c in asked], [(None, 200)])
        self.assertTrue(os.path.isfile(os.path.join(out, "p0.html")))

    def test_options_that_need_state(self):
        for args in (["--fresh"], ["--changes", "ch.tsv"], ["--max-age", "1d"]):
            r = self.run_areq(["-o", "out.tsv"] + args + [self.start_url])
            self.assertEqual(r.rc, 2, r)
            self.assertIn("needs --state", r.err)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "out.tsv")))
        for bad in ("0", "-1h", "1y", "m", ""):
            r = self.run_areq(["--state", "s.db", "--max-age", bad, self.start_url])
            self.assertEqual(r.rc, 2, (bad, r))
            self.assertIn("--max-age", r.err)


def pairs_of(text):
    """{(source, target)} of a tsv output."""
    return {tuple(l.split("\t")) for l in lines_of(text)}


def changes_of(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text == "" or text.endswith("\n"), "a cut line in --changes"
    return sorted(tuple(l.split("\t")) for l in text.split("\n")[:-1])


class ChangesTest(AreqTest):
    def setUp(self):
        super().setUp()
        SRV.cond14("reset")
        self.start_url = SRV.url("/site/p0.html")

    def crawl(self, out, *extra):
        r = self.run_areq(["-o", out, "-d", "2", "--state", "state.db"] + list(extra) +
                          [self.start_url], timeout=scaled(120))
        self.assertEqual(r.rc, 0, r)
        return r

    def test_nothing_changed_gives_an_empty_file(self):
        self.crawl("a.tsv", "--changes", "first.tsv")
        self.crawl("b.tsv", "--changes", "ch.tsv")
        self.assertEqual(os.path.getsize(os.path.join(self.tmp, "ch.tsv")), 0)
        # The first run found every page new.
        first = changes_of(os.path.join(self.tmp, "first.tsv"))
        self.assertTrue(first and all(c[0] == "new" for c in first), first)

    def test_exactly_the_changed_pages_pairs(self):
        a = self.crawl("a.tsv")
        sources = sorted({s for s, _ in pairs_of(a.read("a.tsv"))})
        chosen = [int(u.rsplit("/p", 1)[1].split(".")[0]) for u in sources[1:4]
                  if "?" not in u]
        self.assertTrue(chosen)
        SRV.cond14("change", pages=",".join(map(str, chosen)))
        b = self.crawl("b.tsv", "--changes", "ch.tsv")
        old, new = pairs_of(a.read("a.tsv")), pairs_of(b.read("b.tsv"))
        old_sources = {s for s, _ in old}
        new_sources = {s for s, _ in new}
        expect = sorted([("added",) + p for p in new - old if p[0] in old_sources] +
                        [("removed",) + p for p in old - new if p[0] in new_sources] +
                        [("new", s) for s in new_sources - old_sources])
        got = changes_of(os.path.join(self.tmp, "ch.tsv"))
        self.assertEqual(got, expect)
        changed_sources = {c[1] for c in got if c[0] in ("added", "removed")}
        self.assertTrue(changed_sources)
        self.assertTrue(all("/p%d.html" % i in " ".join(changed_sources) for i in chosen))
        self.assertTrue(all(any(u.endswith("/p%d.html" % i) for i in chosen) or "?" in u
                            for u in changed_sources), changed_sources)


class PageEventsTest(AreqTest):
    """gone, failing and recovered: a site that shrinks, then is down, then is back, on
    one port."""

    def test_gone_failing_recovered(self):
        srv = common.FixtureServer("--pages", "30", "--links", "4")
        port = srv.port
        urls = [srv.url("/site/p%d.html" % i) for i in range(30)]
        self.write_urls(urls)
        args = ["-o", "out.tsv", "--state", "state.db", "-i", "urls.txt"]
        try:
            r = self.run_areq(args)
            self.assertEqual(r.rc, 0, r)
            before = pairs_of(r.read("out.tsv"))
        finally:
            srv.stop()
        # Pages 20 to 29 now answer 404.
        srv = common.FixtureServer("--port", str(port), "--pages", "20", "--links", "4")
        try:
            r = self.run_areq(args + ["--changes", "gone.tsv", "--retries", "0"])
            self.assertEqual(r.rc, 1, r)
        finally:
            srv.stop()
        gone = changes_of(os.path.join(self.tmp, "gone.tsv"))
        self.assertEqual(sorted(c[1] for c in gone if c[0] == "gone"), sorted(urls[20:]))
        self.assertEqual(sorted(c[1:] for c in gone if c[0] == "removed" and c[1] in urls[20:]),
                         sorted(p for p in before if p[0] in urls[20:]))
        # Pages 0 to 19 are the pages of a 20-page site now: other links, listed too.
        self.assertEqual({c[0] for c in gone}, {"gone", "removed", "added"})
        # Nobody answers: every page that was there is failing, with no pair lines.
        r = self.run_areq(args + ["--changes", "down.tsv", "--retries", "0"])
        self.assertEqual(r.rc, 1, r)
        down = changes_of(os.path.join(self.tmp, "down.tsv"))
        self.assertEqual(down, sorted(("failing", u) for u in urls[:20]))
        # Back as at first: all recovered; the gone ones' pairs come back as added.
        srv = common.FixtureServer("--port", str(port), "--pages", "30", "--links", "4")
        try:
            r = self.run_areq(args + ["--changes", "back.tsv"])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(pairs_of(r.read("out.tsv")), before)
        finally:
            srv.stop()
        back = changes_of(os.path.join(self.tmp, "back.tsv"))
        self.assertEqual(sorted(c[1] for c in back if c[0] == "recovered"), sorted(urls))
        self.assertFalse([c for c in back if c[0] == "removed" and c[1] in urls[20:]])
        self.assertEqual(sorted(c[1:] for c in back if c[0] == "added" and c[1] in urls[20:]),
                         sorted(p for p in before if p[0] in urls[20:]))


class RobotsTest(AreqTest):
    """robots.txt kept in the store: revalidated by the next run, reused on 304, and asked
    for plainly once the stored copy is a day old (RFC 9309 section 2.4)."""

    def test_robots_revalidated_and_reused_for_a_day(self):
        rules = self.write("robots.txt", "User-agent: *\nDisallow: /site/p5.html\n")
        srv = common.FixtureServer("--pages", "20", "--links", "6", "--robots", rules)
        self.addCleanup(srv.stop)
        args = ["-o", "out.tsv", "--state", "state.db", "-d", "3", "-v",
                srv.url("/site/p0.html")]
        for run in range(3):
            if run == 2:
                if not common.shutil.which("sqlite3"):
                    self.skipTest("sqlite3 is not installed")
                subprocess.run(["sqlite3", os.path.join(self.tmp, "state.db"),
                                "UPDATE robots SET fetched_at = fetched_at - 90000"],
                               check=True)
            mark = len(srv.conditional("/robots.txt"))
            r = self.run_areq(args)
            self.assertEqual(r.rc, 0, r)
            asked = srv.conditional("/robots.txt")[mark:]
            self.assertEqual(len(asked), 1, asked)
            _, _, _, inm, ims, status, _ = asked[0]
            if run == 1:
                self.assertIsNotNone(inm, "robots.txt not revalidated")
                self.assertEqual(status, 304)
                self.assertIn("not modified: the stored rules", r.err)
            else:
                self.assertIsNone(inm, "run %d: a stored robots.txt used past its day" % run)
                self.assertIsNone(ims)
                self.assertEqual(status, 200)
            self.assertEqual(srv.count("/site/p5.html"), 0, "the stored rules were not obeyed")
            self.assertRegex(r.err, r"\([1-9]\d* disallowed by robots.txt")
            self.assertGreater(srv.count("/site/p1.html"), 0)


class BadStateFileTest(AreqTest):
    def refused(self, data, words):
        path = self.write("state.db", data)
        r = self.run_areq(["-o", "out.tsv", "--state", "state.db", SRV.url("/site/p0.html")])
        self.assertEqual(r.rc, 2, r)
        self.assertIn("state.db", r.err)
        self.assertIn(words, r.err)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data, "the state file was written to")
        self.assertFalse(os.path.exists(path + "-wal"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out.tsv")),
                         "the output was opened before the store was checked")
        self.assertEqual(len(SRV.conditional()), self.before)

    def setUp(self):
        super().setUp()
        self.before = len(SRV.conditional())

    def test_text_file(self):
        self.refused(b"source_url\tparsed_url\nhttp://a/\thttp://b/\n", "not an SQLite database")

    def test_other_sqlite_database(self):
        if not common.shutil.which("sqlite3"):
            self.skipTest("sqlite3 is not installed")
        other = os.path.join(self.tmp, "other.db")
        subprocess.run(["sqlite3", other, "CREATE TABLE t(x); INSERT INTO t VALUES (1);"],
                       check=True)
        with open(other, "rb") as f:
            data = f.read()
        os.unlink(other)
        self.refused(data, "another program")

    def stored(self):
        r = self.run_areq(["-o", "seed.tsv", "--state", "seed.db", SRV.url("/site/p0.html")])
        self.assertEqual(r.rc, 0, r)
        with open(os.path.join(self.tmp, "seed.db"), "rb") as f:
            data = bytearray(f.read())
        self.before = len(SRV.conditional())
        return data

    def test_newer_schema(self):
        data = self.stored()
        data[60:64] = (99).to_bytes(4, "big")  # PRAGMA user_version
        self.refused(bytes(data), "newer areq")

    def test_damaged(self):
        data = self.stored()
        data[100:2100] = bytes((i * 37 + 11) % 256 for i in range(2000))
        self.refused(bytes(data), "damaged")

    def test_second_run_on_one_store(self):
        slow = SRV.url("/slow?delay=%g" % scaled(3))
        first = subprocess.Popen(common.areq_argv(["-q", "-t", "0", "-o", "a.tsv", "--state",
                                                   "s.db", slow]),
                                 cwd=self.tmp, env=common.areq_env(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertTrue(wait_for(lambda: SRV.count("/slow?delay=%g" % scaled(3)) > 0,
                                     scaled(20)), "the first run never asked")
            second = self.run_areq(["-o", "b.tsv", "--state", "s.db", SRV.url("/site/p1.html")])
            self.assertEqual(second.rc, 2, second)
            self.assertIn("in use by another areq run", second.err)
            self.assertIn("s.db", second.err)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "b.tsv")))
        finally:
            out, err = first.communicate(timeout=scaled(60))
        self.assertEqual(first.returncode, 0, err)
        # Once it is over, the store is anyone's again.
        third = self.run_areq(["-o", "c.tsv", "--state", "s.db", SRV.url("/site/p1.html")])
        self.assertEqual(third.rc, 0, third)


if __name__ == "__main__":
    common.main()
