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


setUpModule, tearDownModule = common.fixture_module(globals())


def page_url(name, links=0):
    return common.page_url(SRV, name, (), links)


class IoTest(AreqTest):
    def read_pairs(self, name="out.tsv"):
        with open(os.path.join(self.tmp, name), encoding="utf-8", newline="") as f:
            return by_source(parse_output(self, f.read()))

    def start(self, args, stdin=subprocess.DEVNULL, env=None):
        p = subprocess.Popen(common.areq_argv(args), cwd=self.tmp,
                             env=dict(common.areq_env(), **(env or {})),
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
        # Not under AREQ_WRAPPER: valgrind itself will not start with a descriptor closed.
        argv = ["sh", "-c", 'exec "$@" ' + redirect, "sh", common.areq_bin(),
                "-q", "-o", "out.tsv", list_arg]
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
        # The header is written from the loop, so once it is there the signals are handled.
        out = os.path.join(self.tmp, "out.tsv")
        self.assertTrue(common.wait_for(
            lambda: os.path.exists(out) and os.path.getsize(out) > 0, scaled(10)),
            "areq did not start")
        time.sleep(scaled(0.2))
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


# --- item 6: a stalled reader of -o - ------------------------------------------------------

def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class StalledReaderTest(IoTest):
    def test_backlog_is_bounded_and_sigterm_ends_the_run(self):
        """`areq -o - list | (sleep 40; cat)` held all 100+ MB of output in memory, and
        SIGTERM then waited for the reader. Admission now waits on the writer's backlog and
        the reader gets a bounded grace period; what it finally reads is whole lines."""
        pages = [page_url("stalled-%d.html" % k, links=2000) for k in range(600)]
        self.write_urls(pages)
        # More than one pool thread, as on a machine with more cores: then a write blocked
        # on the pipe no longer stops the scanning by accident.
        p = self.start(["-c", "4", "-o", "-", "urls.txt"], env={"UV_THREADPOOL_SIZE": "4"})
        # Nobody reads p.stdout. Wait until the crawl has started, then until it stops moving.
        def fetched_now():
            return sum(1 for e in SRV.requests() if "/page/stalled-" in e[3])
        self.assertTrue(common.wait_for(lambda: fetched_now() > 0, scaled(10)))
        last = -1
        step = 3 if common.WRAPPER else 0.5
        for _ in range(int(scaled(20) / step)):
            time.sleep(step)
            n = fetched_now()
            if n == last:
                break
            last = n
        self.assertIsNone(p.poll(), "areq ended with its reader stalled")
        fetched = fetched_now()
        # 4 MiB of backlog is about 22 of these 190 KB pages; allow the 4 in flight, a
        # block or two in the pipe, and plenty of slack.
        self.assertLess(fetched, 100, "areq kept fetching with nobody reading its output")
        # Not under a wrapper (its memory, not areq's) nor AddressSanitizer (its shadow).
        if not common.WRAPPER and not common.is_asan_build():
            hwm = vm_hwm_kb(p.pid)
            self.assertLess(hwm, 60 * 1024, "peak RSS %.1f MB with a stalled reader"
                            % (hwm / 1024))
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(scaled(2) + 4)  # the 2 s grace period, then prompt
        except subprocess.TimeoutExpired:
            self.fail("areq still waiting for its stalled reader %.1f s after SIGTERM"
                      % (time.monotonic() - t0))
        self.assertEqual(rc, 143, p.stderr.read())
        out = p.stdout.read().decode("utf-8")
        # Whole lines only; a page's block may be cut short between lines by the grace
        # period, since a 190 KB block does not fit the pipe.
        pairs = by_source(parse_output(self, out))
        self.assertGreater(len(pairs), 0)
        for src, targets in pairs.items():
            self.assertLessEqual(targets, common.page_expected(src, links=2000), src)


    def test_reader_that_comes_back_gets_the_whole_of_a_long_list(self):
        """Review of issue 13 point 3: with the reader stalled, the dispatcher waits for the
        writer's room and the feeder for room in a full frontier (the list is longer than
        the read-ahead); once the reader takes the output both must be woken, and the run
        ends with every page written."""
        big = [page_url("comeback-big-%d.html" % k, links=2000) for k in range(30)]
        small = [page_url("comeback-%d/x.html" % k, links=1) for k in range(1100)]
        self.write_urls(big + small)
        p = self.start(["-c", "4", "-o", "-", "urls.txt"], env={"UV_THREADPOOL_SIZE": "4"})

        def fetched_now():
            return sum(1 for e in SRV.requests() if "/page/comeback-" in e[3])
        self.assertTrue(common.wait_for(lambda: fetched_now() > 0, scaled(10)))
        last = -1
        step = 3 if common.WRAPPER else 0.5
        for _ in range(int(scaled(20) / step)):
            time.sleep(step)
            n = fetched_now()
            if n == last:
                break
            last = n
        self.assertIsNone(p.poll(), "areq ended with its reader stalled")
        self.assertLess(fetched_now(), 100, "areq kept fetching with nobody reading its output")
        out = []
        reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
        reader.start()
        try:
            rc = p.wait(scaled(60))
        except subprocess.TimeoutExpired:
            self.fail("areq did not end after its reader came back (%d of %d pages fetched)"
                      % (fetched_now(), len(big) + len(small)))
        reader.join(scaled(10))
        self.assertEqual(rc, 0, p.stderr.read())
        got = by_source(parse_output(self, out[0].decode("utf-8")))
        self.assertEqual(len(got), len(big) + len(small))
        for u in (big[0], big[-1], small[0], small[-1]):
            self.assertEqual(got[u], common.page_expected(u, links=2000 if u in big else 1))

# --- item 8: output integrity ---------------------------------------------------------------

class FullDiskTest(IoTest):
    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.tmp, "small")
        os.mkdir(self.mnt)
        common.mount_tmpfs(self, self.mnt, "64k")

    def test_full_disk_keeps_whole_blocks_and_counts_them(self):
        """A full disk left a cut last line, and the summary claimed the pairs it could not
        write."""
        pages = [page_url("fulldisk-%d.html" % k, links=200) for k in range(40)]
        self.write_urls(pages)
        r = self.run_areq(["-c", "4", "-o", os.path.join(self.mnt, "out.tsv"), "urls.txt"])
        self.assertEqual(r.rc, 3, r)
        with open(os.path.join(self.mnt, "out.tsv"), encoding="utf-8", newline="") as f:
            text = f.read()
        pairs = parse_output(self, text)  # whole lines only
        got = by_source(pairs)
        self.assertGreater(len(got), 0)
        for src, targets in got.items():
            self.assertEqual(targets, common.page_expected(src, links=200),
                             "a page's block was cut: " + src)
        m = [l for l in r.err_lines() if "pairs written" in l]
        self.assertTrue(m, r)
        claimed = int(m[-1].split(" pairs written")[0].split()[-1])
        self.assertEqual(claimed, len(pairs), "the summary claims pairs the file lacks")


class AppendTest(IoTest):
    def test_append_onto_a_cut_line_starts_a_new_line(self):
        url = page_url("append-cut.html", links=3)
        self.write_urls([url])
        self.write("out.tsv", common.HEADER + "\nhttp://a.example/\thttp://a.exa")
        r = self.run_areq(["--append", "-o", "out.tsv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"out\.tsv.*(cut|partial|new line)")
        with open(os.path.join(self.tmp, "out.tsv"), encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[0], common.HEADER)
        self.assertEqual(lines[1], "http://a.example/\thttp://a.exa")
        self.assertEqual(lines[-1], "")
        self.assertEqual({tuple(l.split("\t")) for l in lines[2:-1]},
                         {(url, t) for t in common.page_expected(url, links=3)})

    def test_concurrent_appenders_write_one_header(self):
        """Twenty areq processes starting --append on a new file at once wrote 2-4 headers
        in more than half of the rounds."""
        url = page_url("append-many.html", links=1)
        self.write_urls([url])
        for rnd in range(1 if common.WRAPPER else 4):  # 20 valgrind runs a round
            out = "out-%d.tsv" % rnd
            procs = [subprocess.Popen(common.areq_argv(["-q", "--append", "-o", out,
                                                        "urls.txt"]),
                                      cwd=self.tmp, env=common.areq_env(),
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
                     for _ in range(20)]
            for p in procs:
                self.assertEqual(p.wait(scaled(60)), 0)
            with open(os.path.join(self.tmp, out), encoding="utf-8") as f:
                lines = f.read().splitlines()
            self.assertEqual(lines.count(common.HEADER), 1, "round %d: %d headers"
                             % (rnd, lines.count(common.HEADER)))
            self.assertEqual(lines[0], common.HEADER)
            self.assertEqual(len(lines), 21)


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

    # rev14c: the other files a run writes. Before, `--failures urls.txt urls.txt` replaced
    # the list with its failures (now that a replaced file is truncated by the writer's first
    # request, after the list was read and crawled; before that, at open, before a line of it
    # was read).
    def test_failures_file_is_the_list(self):
        self.check_refused(["-o", "out.tsv", "--failures", "urls.txt", "urls.txt"])

    def test_changes_file_is_the_list(self):
        self.check_refused(["-o", "out.tsv", "--state", "s.db", "--changes", "./link.txt",
                            "urls.txt"])


if __name__ == "__main__":
    unittest.main()
