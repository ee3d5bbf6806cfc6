#!/usr/bin/env python3
"""End-to-end tests of areq's input and output integrity (issue 16 items 1, 4, 5, 6, 8 and the
same-file check): closed standard descriptors, FIFOs and pipes as lists, the writer's bound on
output held for a stalled reader, a full disk, --append onto a cut line and concurrent
appenders, and a list that is also the output.

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_io.py -v
"""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, by_source, parse_output, scaled  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    common.areq_bin()
    SRV = common.FixtureServer()


def tearDownModule():
    if SRV:
        SRV.stop()


def page_url(name, links=0):
    return common.page_url(SRV, name, (), links)


class IoTest(AreqTest):
    def read_pairs(self, name="out.tsv"):
        with open(os.path.join(self.tmp, name), encoding="utf-8", newline="") as f:
            return by_source(parse_output(self, f.read()))

    def start(self, args, stdin=subprocess.DEVNULL):
        p = subprocess.Popen(common.areq_argv(args), cwd=self.tmp, env=common.areq_env(),
                             stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def reap():
            if p.poll() is None:
                p.kill()
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    f.close()
        self.addCleanup(reap)
        return p


# --- item 1: closed standard descriptors ----------------------------------------------------

class ClosedStdioTest(IoTest):
    """cron and daemons start programs with 0, 1 or 2 closed; libuv's own descriptors then
    took those numbers and its assertion ended the run with SIGABRT."""

    def run_closed(self, redirect, list_arg):
        name = {">&-": "stdout", "2>&-": "stderr", "<&-": "stdin"}[redirect]
        url = page_url("closed-%s.html" % name, links=3)
        self.write_urls([url])
        argv = ["sh", "-c", 'exec "$@" ' + redirect, "sh"] + common.areq_argv(
            ["-q", "-o", "out.tsv", list_arg])
        stdin = open(os.path.join(self.tmp, "urls.txt"), "rb") if list_arg == "-" else None
        try:
            p = subprocess.run(argv, cwd=self.tmp, env=common.areq_env(),
                               stdin=stdin if stdin else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=scaled(30))
        finally:
            if stdin:
                stdin.close()
        self.assertEqual(p.returncode, 0, "%s: exit %d, stderr %r"
                         % (redirect, p.returncode, p.stderr[-2000:]))
        return url

    def test_stdout_closed(self):
        url = self.run_closed(">&-", "urls.txt")
        self.assertEqual(self.read_pairs(), {url: common.page_expected(url, links=3)})

    def test_stderr_closed(self):
        url = self.run_closed("2>&-", "urls.txt")
        self.assertEqual(self.read_pairs(), {url: common.page_expected(url, links=3)})

    def test_stdin_closed_reading_stdin(self):
        # A closed standard input reads as an empty list.
        self.run_closed("<&-", "-")
        self.assertEqual(self.read_pairs(), {})


# --- items 4 and 5: FIFOs and pipes as lists ------------------------------------------------

class FifoTest(IoTest):
    def test_fifo_list_is_read_once(self):
        """`mkfifo f; echo URL > f & areq f`: a check that opened and closed the FIFO threw the
        writer's bytes away, and the second open waited for ever."""
        url = page_url("fifo-once.html", links=4)
        fifo = os.path.join(self.tmp, "f")
        os.mkfifo(fifo)

        def writer():
            try:
                with open(fifo, "w") as f:  # blocks until areq opens the FIFO
                    f.write(url + "\n")
            except OSError:
                pass
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        p = self.start(["-o", "out.tsv", "f"])
        try:
            rc = p.wait(scaled(20))
        except subprocess.TimeoutExpired:
            self.fail("areq still reading the FIFO after its writer finished")
        self.assertEqual(rc, 0, p.stderr.read())
        self.assertEqual(self.read_pairs(), {url: common.page_expected(url, links=4)})

    def test_sigterm_while_fifo_has_no_writer(self):
        os.mkfifo(os.path.join(self.tmp, "f"))
        p = self.start(["-o", "out.tsv", "f"])
        time.sleep(scaled(0.5))
        self.assertIsNone(p.poll(), "areq ended before the FIFO had a writer")
        common.stop_with_signal(self, p, signal.SIGTERM, 143, " waiting for the FIFO's writer")
        self.assertEqual(self.read_pairs(), {})

    def test_idle_pipe_does_not_starve_scanning(self):
        """A list read through a path (/dev/stdin, <(producer)) whose producer is idle: the
        pages already fetched are scanned and written, and SIGTERM ends the run."""
        url = page_url("pipe-idle.html", links=5)
        p = self.start(["-o", "out.tsv", "/dev/stdin"], stdin=subprocess.PIPE)
        p.stdin.write((url + "\n").encode())
        p.stdin.flush()  # and then nothing more, the pipe left open

        def written():
            try:
                with open(os.path.join(self.tmp, "out.tsv"), encoding="utf-8") as f:
                    return f.read().count("\n") == 6
            except FileNotFoundError:
                return False
        self.assertTrue(common.wait_for(written, scaled(10)),
                        "the pairs of the first URL were not written while the producer slept")
        self.assertIsNone(p.poll())
        common.stop_with_signal(self, p, signal.SIGTERM, 143, " with the producer idle")
        self.assertEqual(self.read_pairs(), {url: common.page_expected(url, links=5)})


# --- the same file as input and output ------------------------------------------------------

class SameFileTest(IoTest):
    def check_refused(self, args):
        url = page_url("same.html", links=2)
        self.write_urls([url])
        os.symlink("urls.txt", os.path.join(self.tmp, "link.txt"))
        r = self.run_areq(args)
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.err, r"urls\.txt|link\.txt")
        self.assertRegex(r.err, r"input.*output|output.*input")
        with open(os.path.join(self.tmp, "urls.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), url + "\n", "the list was changed")
        self.assertEqual(SRV.count(common.target_of(url)), 0)

    def test_same_name(self):
        self.check_refused(["-o", "urls.txt", "urls.txt"])

    def test_other_name_for_the_same_file(self):
        self.check_refused(["-o", "./urls.txt", "link.txt"])

    def test_append(self):
        self.check_refused(["--append", "-o", "urls.txt", "urls.txt"])


if __name__ == "__main__":
    unittest.main()
