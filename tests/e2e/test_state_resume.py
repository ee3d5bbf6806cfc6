#!/usr/bin/env python3
"""End-to-end tests of resuming with --state (issue 14): runs cut short by SIGKILL at random
points, by SIGINT, and by a full disk, then run again, must leave an output with every line
of a clean run exactly once and no cut line; -o - writes the done pages again; --fresh starts
over. Runs are cut by what the server has answered, never by the clock.

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


if __name__ == "__main__":
    common.main()
