#!/usr/bin/env python3
"""End-to-end tests of resuming with --state (issue 14): runs cut short by SIGKILL at random
points, by SIGINT, and by a full disk, then run again, must leave an output (and --changes
and --failures files) with every line of a clean run exactly once and no cut line; -o -
writes the done pages again; --fresh starts over. Runs are cut by what the server has
answered, never by the clock.

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_state_resume.py -v
(AREQ_TEST_SEED picks other cut points.)
"""
import os
import random
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, scaled, wait_for  # noqa: E402


def lines_of(text):
    """The output's lines, the header apart, as a sorted list (a multiset)."""
    lines = text.split("\n")
    assert lines[-1] == "", "the output ends in a cut line"
    return sorted(lines[1:-1])


class ResumeTest(AreqTest):
    """Runs cut short at random points (by the pages the server has answered, not by the
    clock), then run again: the output ends with every line of a clean run exactly once."""

    # Paced so that a run lasts long enough to be cut anywhere; valgrind paces it anyway.
    ARGS = ["-d", "5", "-c", "4"] + ([] if common.WRAPPER else ["--delay", "0.004"])

    @classmethod
    def setUpClass(cls):
        cls.srv = common.FixtureServer("--pages", "150", "--links", "8", "--robots", "404")
        cls.start_url = cls.srv.url("/site/p0.html")
        tmp = common.tempfile.mkdtemp(prefix="areq-e2e-")
        try:
            r = common.run_areq(["-q", "-o", "clean.tsv"] + cls.ARGS + [cls.start_url], tmp)
            assert r.rc == 0, r
            cls.clean = lines_of(r.read("clean.tsv"))
            cls.pages = len(cls.srv.conditional())
        finally:
            common.shutil.rmtree(tmp, True)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def start(self, *extra, out="out.tsv"):
        p = common.start_areq(["-o", out, "--state", "state.db"] + list(extra) + self.ARGS +
                              [self.start_url], self.tmp)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        return p

    def answered(self):
        return len(self.srv.conditional())

    def until_answered(self, p, n):
        """Waits until the server has answered n more pages, or areq has ended."""
        goal = self.answered() + n
        wait_for(lambda: p.poll() is not None or self.answered() >= goal, scaled(60),
                 interval=0.005)

    def assertExactlyOnce(self, text):
        self.assertTrue(text.endswith("\n"), "the output ends in a cut line")
        got = lines_of(text)
        self.assertEqual(len(got), len(set(got)), "a line came twice")
        self.assertEqual(got, self.clean)

    def test_sigkill_at_random_points_then_resume(self):
        rng = random.Random(int(os.environ.get("AREQ_TEST_SEED", "14")))
        resumed = 0
        # 20 cut runs; 6 under valgrind, where each run takes twenty times as long.
        for i in range(6 if common.WRAPPER else 20):
            p = self.start("-v")
            self.until_answered(p, rng.randint(1, self.pages))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
            err = p.stderr.read().decode("utf-8", "replace")
            resumed += "resuming the unfinished run" in err
            path = os.path.join(self.tmp, "out.tsv")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                got = text.split("\n")[1:-1]
                self.assertEqual(len(got), len(set(got)), "run %d: a line came twice" % i)
        last = self.run_areq(["-o", "out.tsv", "--state", "state.db", "-v"] + self.ARGS +
                             [self.start_url], timeout=120)
        self.assertEqual(last.rc, 0, last)
        self.assertExactlyOnce(last.read("out.tsv"))
        self.assertGreater(resumed, 0, "no run ever resumed another")

    def test_sigint_then_resume(self):
        p = self.start()
        self.until_answered(p, self.pages // 2)
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(scaled(30)), 130)
        mark = self.answered()
        r = self.run_areq(["-o", "out.tsv", "--state", "state.db", "-v"] + self.ARGS +
                          [self.start_url], timeout=120)
        self.assertEqual(r.rc, 0, r)
        self.assertExactlyOnce(r.read("out.tsv"))
        self.assertIn("resuming the unfinished run", r.err)
        # The pages done before the signal were not asked for again.
        again = len(self.srv.conditional()[mark:])
        self.assertLess(again, self.pages)
        import re
        done = int(re.search(r"(\d+) done before \(resumed\)", r.err).group(1))
        self.assertGreater(done, 0)
        self.assertEqual(again + done, self.pages)

    def test_stdout_resume_writes_the_done_pages_again(self):
        p = self.start(out="-")
        self.until_answered(p, self.pages // 2)
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(scaled(30)), 130)
        r = self.run_areq(["-o", "-", "--state", "state.db"] + self.ARGS + [self.start_url],
                          timeout=120)
        self.assertEqual(r.rc, 0, r)
        self.assertExactlyOnce(r.out)

    def test_full_disk_then_resume(self):
        disk = os.path.join(self.tmp, "disk")
        os.mkdir(disk)
        common.mount_tmpfs(self, disk, "160k")
        args = ["-o", "disk/out.tsv", "--state", "disk/state.db"] + self.ARGS + [self.start_url]
        full = self.run_areq(args, timeout=120)
        self.assertEqual(full.rc, 3, full)
        # Whichever fills the disk first, the output or the store, is named.
        self.assertRegex(full.err, "no space left on device|database or disk is full")
        # Room again: the same command goes on from the store's last commit.
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        r = self.run_areq(["-v"] + args, timeout=120)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("resuming the unfinished run", r.err)
        self.assertExactlyOnce(r.read("disk/out.tsv"))

    def test_fresh_starts_over(self):
        p = self.start()
        self.until_answered(p, self.pages // 2)
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(scaled(30)), 130)
        r = self.run_areq(["-o", "out.tsv", "--state", "state.db", "--fresh", "-v"] +
                          self.ARGS + [self.start_url], timeout=120)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("resuming", r.err)
        self.assertExactlyOnce(r.read("out.tsv"))
        self.assertIn("0 done before (resumed)", r.err)


def whole_lines(test, text, what):
    """The lines of a --changes or --failures file as a sorted list (a multiset), after
    checking that none is cut and none came twice."""
    test.assertTrue(text == "" or text.endswith("\n"), "%s ends in a cut line" % what)
    lines = text.split("\n")[:-1]
    test.assertEqual(len(lines), len(set(lines)), "%s: a line came twice" % what)
    return sorted(lines)


class KeptFilesResumeTest(AreqTest):
    """--changes and --failures (issue 14) across runs cut by SIGKILL at random points (by
    the pages the server has answered, not by the clock): on a site where some pages
    changed since the store's last run and some links fail, and from a list with a bad
    line, each file ends with the lines of an uninterrupted run exactly once."""

    # Paced so that commits (every quarter of a second) come before most cuts.
    ARGS = ["-d", "3", "-c", "2", "-i", "list.txt"] + ([] if common.WRAPPER else
                                                      ["--delay", "0.03"])
    FILES = ("out", "ch", "fail")

    @classmethod
    def setUpClass(cls):
        cls.srv = common.FixtureServer("--pages", "60", "--links", "6", "--robots", "404")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        super().setUp()
        self.srv.cond14("reset")
        with open(os.path.join(self.tmp, "list.txt"), "w") as f:
            f.write(self.srv.url("/rich/p0.html") + "\nnot a URL\n")

    def areq_args(self, state, out, ch, fail, verbosity="-q"):
        return [verbosity, "-o", out, "--state", state, "--changes", ch, "--failures", fail] + \
            self.ARGS

    def read(self, name):
        with open(os.path.join(self.tmp, name), encoding="utf-8") as f:
            return f.read()

    def reference(self):
        """A finished run on s.db, then changed pages, then the next run on a copy of the
        store, never interrupted: what each file must end with. (lines, pages answered)."""
        seed = self.run_areq(["-q", "-o", "seed", "--state", "s.db"] + self.ARGS, timeout=120)
        self.assertEqual(seed.rc, 1, seed)  # some links fail
        common.shutil.copy(os.path.join(self.tmp, "s.db"), os.path.join(self.tmp, "ref.db"))
        self.assertTrue(self.srv.cond14("change", every="4", offset="1").split())
        # The reference: the same run on a copy of the store, never interrupted.
        mark = len(self.srv.conditional())
        ref = self.run_areq(self.areq_args("ref.db", "ref", "refch", "reffail"), timeout=120)
        self.assertEqual(ref.rc, 1, ref)
        pages = len(self.srv.conditional()) - mark
        expect = {name: whole_lines(self, self.read(ref_name), ref_name)
                  for name, ref_name in zip(self.FILES, ("ref", "refch", "reffail"))}
        self.assertGreater(len(expect["ch"]), 10, "too few changes to tell anything")
        self.assertTrue(any('"kind":"http"' in l for l in expect["fail"]), expect["fail"])
        self.assertTrue(any('"kind":"input"' in l for l in expect["fail"]), expect["fail"])
        return expect, pages

    def last_run(self):
        """The store's last run: (finished, pages it has committed)."""
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.tmp, "s.db"), uri=True)
        try:
            run, finished = db.execute("SELECT id, finished_at IS NOT NULL FROM run "
                                       "ORDER BY id DESC LIMIT 1").fetchone()
            pages = db.execute("SELECT count(*) FROM visit WHERE run = ?", (run,)).fetchone()
            return finished == 1, pages[0]
        finally:
            db.close()

    def assertLikeReference(self, expect):
        for name in self.FILES:
            self.assertEqual(whole_lines(self, self.read(name), name), expect[name], name)

    def test_sigkill_at_random_points_then_resume(self):
        expect, pages = self.reference()
        rng = random.Random(int(os.environ.get("AREQ_TEST_SEED", "14")))
        killed = resumed = 0
        ended = False
        # 12 cut runs; 3 under valgrind, where each run takes twenty times as long.
        for i in range(3 if common.WRAPPER else 12):
            # Under valgrind a commit lags the pages by more: cut later, or none is kept.
            cut = (rng.randint(pages // 3, pages * 2 // 3) if common.WRAPPER else
                   rng.randint(1, pages // 3))
            goal = len(self.srv.conditional()) + cut
            p = common.start_areq(self.areq_args("s.db", "out", "ch", "fail", "-v"), self.tmp)
            self.addCleanup(lambda p=p: (p.poll() is None and p.kill(), p.wait()))
            wait_for(lambda: p.poll() is not None or len(self.srv.conditional()) >= goal,
                     scaled(60), interval=0.005)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            rc = p.wait()
            self.assertNotIn("afresh", p.stderr.read().decode("utf-8", "replace"))
            finished, committed = self.last_run()
            if rc != -signal.SIGKILL or finished:
                ended = True  # the run was done (killed, maybe, on its way out): a next
                break         # one would be a new run, with nothing changed since
            resumed += committed > 0  # the next run goes on from these
            for name in self.FILES:
                if os.path.exists(os.path.join(self.tmp, name)):
                    text = self.read(name)
                    got = text.split("\n")[1 if name == "out" else 0:-1]
                    self.assertEqual(len(got), len(set(got)),
                                     "run %d: a line of %s came twice" % (i, name))
        self.assertGreater(killed, 0, "no run was cut short")
        if not ended:
            last = self.run_areq(self.areq_args("s.db", "out", "ch", "fail", "-v"),
                                 timeout=120)
            self.assertEqual(last.rc, 1, last)
            self.assertIn("resuming the unfinished run", last.err)
            self.assertNotIn("afresh", last.err)
        self.assertGreater(resumed, 0, "no run went on from pages another had committed")
        self.assertLikeReference(expect)

    def test_full_disk_under_the_changes_file_then_resume(self):
        """A --changes file that fills its disk stops the run (exit 3); with room again,
        the same command goes on: no page whose changes did not reach the file is taken
        as done."""
        expect, _ = self.reference()
        disk = os.path.join(self.tmp, "disk")
        os.mkdir(disk)
        common.mount_tmpfs(self, disk, "4k")
        full = self.run_areq(self.areq_args("s.db", "out", "disk/ch", "fail"), timeout=120)
        self.assertEqual(full.rc, 3, full)
        self.assertIn("no space left on device", full.err)
        subprocess.run(["mount", "-o", "remount,size=1m", disk], check=True)
        r = self.run_areq(self.areq_args("s.db", "out", "disk/ch", "fail", "-v"), timeout=120)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("resuming the unfinished run", r.err)
        self.assertNotIn("afresh", r.err)
        common.shutil.move(os.path.join(disk, "ch"), os.path.join(self.tmp, "ch"))
        self.assertLikeReference(expect)


if __name__ == "__main__":
    common.main()
