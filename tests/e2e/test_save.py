#!/usr/bin/env python3
"""End-to-end tests of --save, --save-types, --flat and --manifest (issue 15): bodies saved
byte-identical to what the server sent, the wget -x layout, hostile URLs and planted
symbolic links that must not lead outside the directory, transfers that fail, are cut or
are interrupted leaving nothing, --flat collisions, the manifest's hashes, a full disk, and
flat memory on a large body. Routes: /save/..., /save15/... in tests/fixture/server.py.
Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_save.py -v
"""
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, file_tree as tree, served, scaled  # noqa: E402
from test_faults import measure_areq  # noqa: E402

SRV = None
MB = 1 << 20


setUpModule, tearDownModule = common.fixture_module(globals())



class SaveTest(AreqTest):
    def save_dir(self):
        return os.path.join(self.tmp, "saved")

    def assertNoTemporaryFiles(self, root):
        for d, _, files in os.walk(root):
            left = [f for f in files if f.startswith(".areq-")]
            self.assertEqual(left, [], "temporary files left in %s" % d)

    def assertSavedAsServed(self, root, urls_to_paths):
        files = tree(root)
        for url, rel in urls_to_paths.items():
            self.assertIn(rel, files, "%s not saved as %s; saved: %s" % (url, rel, sorted(files)))
            self.assertEqual(files[rel], served(url), "%s: saved bytes differ" % url)


class BodiesTest(SaveTest):
    def test_images_and_html_saved_byte_identical(self):
        urls = {
            SRV.url("/save/img/a.png?size=70000"): "save/img/a.png?size=70000",
            # larger than a body held in memory: streamed to its file as it arrives
            SRV.url("/save/img/big.png?size=1000000"): "save/img/big.png?size=1000000",
            SRV.url("/save/img/b.jpg"): "save/img/b.jpg",
            SRV.url("/save/doc.pdf?size=1"): "save/doc.pdf?size=1",
            SRV.url("/save/data.bin?size=0"): "save/data.bin?size=0",
            SRV.url("/save/site/index.html?href=a.html&href=b.png"):
                "save/site/index.html?href=a.html&href=b.png",
            SRV.url("/binary"): "binary",
        }
        self.write_urls(list(urls))
        res = self.run_areq(["--save", "saved", "--manifest", "m.jsonl", "-o", "out.tsv"])
        self.assertEqual(res.rc, 0, res)
        root = os.path.join(self.save_dir(), common.host_dir(SRV))
        self.assertSavedAsServed(root, urls)
        self.assertEqual(len(tree(self.save_dir())), len(urls))
        self.assertNoTemporaryFiles(self.save_dir())
        # The HTML page was still scanned: its pairs were written.
        page = SRV.url("/save/site/index.html?href=a.html&href=b.png")
        pairs = common.parse_output(self, res.read("out.tsv"))
        self.assertEqual(set(t for s, t in pairs if s == page),
                         {SRV.url("/save/site/a.html"), SRV.url("/save/site/b.png")})
        # Every body counted as saved, and none as skipped.
        self.assertRegex(res.err_lines()[-1], r"\b1 ok, 0 failed, 0 skipped, 7 saved\b")

        # The manifest: a line per body, whose hash and size are those of the file.
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual(sorted(l["url"] for l in lines), sorted(urls))
        for l in lines:
            self.assertEqual(set(l), {"url", "final_url", "path", "bytes", "type", "sha256"})
            with open(os.path.join(self.save_dir(), l["path"]), "rb") as f:
                data = f.read()
            self.assertEqual(l["path"], common.host_dir(SRV) + "/" + urls[l["url"]])
            self.assertEqual(l["sha256"], hashlib.sha256(data).hexdigest(), l)
            self.assertEqual(l["bytes"], len(data))
            self.assertEqual(l["final_url"], l["url"])
        types = {l["url"]: l["type"] for l in lines}
        self.assertEqual(types[SRV.url("/save/img/b.jpg")], "image/jpeg")

    def test_final_url_after_a_redirect(self):
        target = SRV.url("/save/moved/to.png")
        url = SRV.url("/redirect?to=/save/moved/to.png")
        res = self.run_areq(["--save", "saved", "--manifest", "m.jsonl", "-o", "out.tsv", url])
        self.assertEqual(res.rc, 0, res)
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            (line,) = [json.loads(l) for l in f]
        self.assertEqual(line["url"], url)
        self.assertEqual(line["final_url"], target)
        # Saved under the URL that was asked for, which is what links to it name.
        self.assertEqual(line["path"], common.host_dir(SRV) + "/redirect?to=%2Fsave%2Fmoved%2Fto.png")
        with open(os.path.join(self.save_dir(), line["path"]), "rb") as f:
            self.assertEqual(f.read(), served(target))

    def test_save_types(self):
        urls = [SRV.url("/save/t/a.png"), SRV.url("/save/t/b.gif"), SRV.url("/save/t/c.pdf"),
                SRV.url("/save/t/p.html?href=x.html"), SRV.url("/save/t/s.css")]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "--save-types", "image/*, application/PDF",
                             "-o", "out.tsv"])
        self.assertEqual(res.rc, 0, res)
        files = tree(os.path.join(self.save_dir(), common.host_dir(SRV)))
        self.assertEqual(sorted(files), ["save/t/a.png", "save/t/b.gif", "save/t/c.pdf"])
        # HTML not saved is still scanned; CSS is skipped as without --save.
        self.assertIn(SRV.url("/save/t/x.html"), res.read("out.tsv"))
        self.assertRegex(res.err_lines()[-1], r"\b1 ok, 0 failed, 1 skipped, 3 saved\b")

    def test_download_only_does_not_scan(self):
        # -o /dev/null: nothing needs the links, so HTML is saved without a scan.
        page = SRV.url("/save/only/p.html?href=a.html")
        urls = [page, SRV.url("/save/only/i.png")]
        res = self.run_areq(["--save", "saved", "-o", "/dev/null"] + urls)
        self.assertEqual(res.rc, 0, res)
        self.assertRegex(res.err_lines()[-1], r"\b0 ok, 0 failed, 0 skipped, 2 saved\b")
        self.assertSavedAsServed(os.path.join(self.save_dir(), common.host_dir(SRV)),
                                 {u: u.split(common.host_dir(SRV) + "/")[1] for u in urls})
        # With --depth the links are needed: the page is scanned and its link followed.
        res = self.run_areq(["--save", "saved2", "-o", "/dev/null", "-d", "1", "--no-robots",
                             page])
        self.assertEqual(res.rc, 0, res)
        self.assertRegex(res.err_lines()[-1], r"\b2 ok, 0 failed, 0 skipped, 2 saved\b")
        self.assertIn("save/only/a.html", tree(os.path.join(self.tmp, "saved2", common.host_dir(SRV))))

    def test_without_save_nothing_changes(self):
        url = SRV.url("/save/t/a.png")
        res = self.run_areq(["-o", "out.tsv", url])
        self.assertEqual(res.rc, 0, res)
        self.assertRegex(res.err_lines()[-1], r"^areq: 0 ok, 0 failed, 1 skipped, 0 pairs")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["out.tsv"])

    def test_usage_errors(self):
        for args, words in ((["--flat"], "--flat needs --save"),
                            (["--manifest", "m"], "--manifest needs --save"),
                            (["--save", "d", "--save-types", "image/png,bogus"], "'bogus'"),
                            (["--save", "d", "--save-types", "*/png"], "'*/png'")):
            res = self.run_areq(args + [SRV.url("/save/x.png")])
            self.assertEqual(res.rc, 2, res)
            self.assertIn(words, res.err)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "d")))


class LayoutTest(SaveTest):
    # URL path (after the origin) -> the path below DIR/HOST:PORT/, as wget -x lays it out.
    TABLE = [
        ("/save/", "save/index.html"),
        ("/save/l/x.png", "save/l/x.png"),
        ("/save/l/deep/er/", "save/l/deep/er/index.html"),
        ("/save/l/q.png?a=1&b=2", "save/l/q.png?a=1&b=2"),
        ("/save/l/?q=1", "save/l/index.html?q=1"),
        ("/save/l/slash?p=a/b", "save/l/slash?p=a%2Fb"),
        ("/save/l/caf%C3%A9%20au%20lait.png", "save/l/caf\u00e9 au lait.png"),
        ("/save/l/a%2Fb.png", "save/l/a%2Fb.png"),
        ("/save/l/frag.png#top", "save/l/frag.png"),
        ("/save/l/" + "n" * 300 + ".png", None),  # shortened: checked below
        # a file and a directory of one name: the file becomes index.html, in any order
        ("/save/l/both", "save/l/both/index.html"),
        ("/save/l/both/inner.png", "save/l/both/inner.png"),
        ("/save/l/other/inner.png", "save/l/other/inner.png"),
        ("/save/l/other", "save/l/other/index.html"),
    ]

    def test_layout_table(self):
        urls = [SRV.url(p) for p, _ in self.TABLE]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "-c", "1"])
        self.assertEqual(res.rc, 0, res)
        root = os.path.join(self.save_dir(), common.host_dir(SRV))
        files = tree(root)
        want = {}
        for p, rel in self.TABLE:
            if rel is not None:
                want[SRV.url(p.split("#")[0])] = rel
        self.assertSavedAsServed(root, want)
        long = [f for f in files if f.startswith("save/l/nnnn")]
        self.assertEqual(len(long), 1, sorted(files))
        self.assertLessEqual(len(long[0].encode()) - len("save/l/"), 255)
        self.assertRegex(long[0], r"~[0-9a-f]{16}$")
        self.assertEqual(len(files), len(self.TABLE))

    def test_port_is_part_of_the_host_directory(self):
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", SRV.url("/save/p.png")])
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(os.listdir(self.save_dir()), [common.host_dir(SRV)])


class EscapeTest(SaveTest):
    # Each must land inside DIR (under some harmless name) or be refused.
    HOSTILE = [
        "/save/%2e%2e%2f%2e%2e%2f%2e%2e%2fescaped.png",
        "/save/..%2f..%2f..%2fescaped.png",
        "/save/..%5c..%5c..%5cescaped.png",
        "/save/%2e%2e/%2e%2e/%2e%2e/%2e%2e/escaped.png",
        "/save/a/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2ftmp%2fescaped.png",
        "/save/%2fetc%2fescaped.png",
        "/save/%00escaped.png",
        "/save/nul%00/escaped.png",
        "/save/%2e/./escaped.png",
        "/save/..\\..\\escaped.png",
        "/save//..//..//escaped.png",
        "/save/%0a%0descaped.png",
        "/save/%2e%2e",
        "/save/a/%2e%2e/",
        "/save/?q=../../escaped",
        "/save/x?/../../escaped",
    ]

    def test_hostile_urls_stay_inside(self):
        outside = os.path.join(self.tmp, "outside")
        os.mkdir(outside)
        self.write("outside/keep", b"keep")
        urls = [SRV.url(p) for p in self.HOSTILE]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "--manifest", "m.jsonl"])
        self.assertIn(res.rc, (0, 1), res)
        # Nothing outside: the temp directory holds what it held, and the save directory.
        self.assertEqual(sorted(os.listdir(self.tmp)),
                         ["m.jsonl", "out.tsv", "outside", "saved", "urls.txt"])
        self.assertEqual(tree(outside), {"keep": b"keep"})
        real_root = os.path.realpath(self.save_dir())
        for d, dirs, files in os.walk(self.save_dir()):
            for name in dirs + files:
                p = os.path.join(d, name)
                self.assertFalse(os.path.islink(p), p)
                self.assertTrue(os.path.realpath(p).startswith(real_root + os.sep), p)
                self.assertNotIn(name, (".", ".."))
                self.assertFalse(any(c in name for c in "\\\0\n\r"), repr(name))
        # Every body that was saved is whole, and the manifest names each file (some of the
        # URLs are one URL once normalised, or share a name once made safe).
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(l) for l in f]
        files = tree(self.save_dir())
        self.assertEqual(set(l["path"] for l in lines), set(files))
        self.assertGreaterEqual(len(files), 10)
        for l in lines:
            self.assertIn(hashlib.sha256(files[l["path"]]).hexdigest(),
                          [m["sha256"] for m in lines if m["path"] == l["path"]])
        self.assertNoTemporaryFiles(self.save_dir())

    def test_planted_symlinks_are_never_followed(self):
        outside = os.path.join(self.tmp, "outside")
        os.mkdir(outside)
        self.write("outside/victim.png", b"untouched")
        base = os.path.join(self.save_dir(), common.host_dir(SRV), "save")
        os.makedirs(base)
        os.symlink(outside, os.path.join(base, "linkdir"))
        os.symlink(os.path.join(outside, "victim.png"), os.path.join(base, "victim.png"))
        os.symlink(outside, os.path.join(self.save_dir(), "127.0.0.2"))
        urls = [SRV.url("/save/linkdir/victim.png"), SRV.url("/save/linkdir/new.png"),
                SRV.url("/save/victim.png"), SRV.url("/save/fine.png")]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "--failures", "f.jsonl",
                             "--retries", "0"])
        self.assertEqual(res.rc, 1, res)
        self.assertEqual(tree(outside), {"victim.png": b"untouched"})
        self.assertTrue(os.path.islink(os.path.join(base, "linkdir")))
        self.assertTrue(os.path.islink(os.path.join(base, "victim.png")))
        with open(os.path.join(self.tmp, "f.jsonl"), encoding="utf-8") as f:
            failed = {json.loads(l)["url"]: json.loads(l) for l in f}
        self.assertEqual(sorted(failed), sorted(urls[:3]))
        for f in failed.values():
            self.assertEqual(f["kind"], "save")
            self.assertIn("symbolic link", f["error"])
        for u in urls[:3]:
            self.assertFailureReported(res, u, "cannot save")
        with open(os.path.join(base, "fine.png"), "rb") as f:
            self.assertEqual(f.read(), served(urls[3]))
        self.assertNoTemporaryFiles(self.save_dir())


class PartialTest(SaveTest):
    def test_failed_transfers_leave_nothing(self):
        urls = [SRV.url("/save15/cut?at=50000"), SRV.url("/close-mid-body"), SRV.url("/reset"),
                SRV.url("/bad-chunked"), SRV.url("/save/big.png?size=50000"),
                SRV.url("/status/404"), SRV.url("/status/500")]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "--retries", "0",
                             "--max-size", "20k"])
        self.assertEqual(res.rc, 1, res)
        self.assertEqual(tree(self.save_dir()), {})
        self.assertRegex(res.err_lines()[-1], r"\b0 ok, 7 failed, 0 skipped, 0 saved\b")

    def test_a_good_copy_is_never_replaced_by_a_bad_one(self):
        root = os.path.join(self.save_dir(), common.host_dir(SRV))
        good = {"save15/cut?at=50000": b"good cut", "close-mid-body": b"good close",
                "status/404": b"good 404", "save/big.png?size=50000": b"good big"}
        for rel, data in good.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
        self.write_urls([SRV.url("/" + rel) for rel in good])
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "--retries", "1",
                             "--max-size", "20k"])
        self.assertEqual(res.rc, 1, res)
        self.assertEqual(tree(self.save_dir()), {common.host_dir(SRV) + "/" + k: v for k, v in good.items()})

    def test_not_modified_keeps_the_saved_file(self):
        # A 304 has no body: the sink never starts, and the copy saved earlier stays. (With
        # --state the store sends the validators; here the request carries them itself.)
        url = SRV.url("/cond14/fixed?etag=%22v1%22")
        rel = os.path.join(self.save_dir(), common.host_dir(SRV), "cond14", 'fixed?etag=%22v1%22')
        os.makedirs(os.path.dirname(rel))
        with open(rel, "wb") as f:
            f.write(b"saved before")
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", "-H", 'If-None-Match: "v1"',
                             url])
        self.assertIn("304", res.err)
        self.assertEqual(tree(self.save_dir()), {common.host_dir(SRV) + "/cond14/fixed?etag=%22v1%22":
                                                 b"saved before"})
        # Without the validator the page is saved anew.
        res = self.run_areq(["--save", "saved", "-o", "out.tsv", url])
        self.assertEqual(res.rc, 0, res)
        with open(rel, "rb") as f:
            self.assertEqual(f.read(), served(url))

    def interrupt(self, url, started):
        p = common.start_areq(["--save", "saved", "-o", "out.tsv", "--max-size", "0", url],
                              self.tmp)
        try:
            self.assertTrue(common.wait_for(lambda: started(p), scaled(10)),
                            "the body did not begin")
            common.stop_with_signal(self, p, signal.SIGINT, 130)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(tree(self.save_dir()), {})

    def test_interrupted_streamed_body_leaves_nothing(self):
        # Larger than what is held in memory: streamed to a temporary file, which must go.
        url = SRV.url("/save15/big?size=100000000&pause=0.05")
        self.interrupt(url, lambda p: common.temporary_files_open(p.pid, self.save_dir()))

    def test_interrupted_held_body_leaves_nothing(self):
        # A page arriving slowly, held in memory until it is whole: nothing on disk.
        url = SRV.url("/drip?bytes=100000&interval=0.01")
        target = common.target_of(url)
        self.interrupt(url, lambda p: SRV.count(target) > 0 and time.sleep(0.3) is None)


class FlatTest(SaveTest):
    def test_collisions_get_a_counter(self):
        urls = [SRV.url("/save/%s/x.png" % d) for d in "abcd"] + [
            SRV.url("/save/e/x"), SRV.url("/save/f/x"), SRV.url("/save/g/?q=1")]
        self.write_urls(urls)
        res = self.run_areq(["--save", "saved", "--flat", "-o", "out.tsv", "--manifest",
                             "m.jsonl"])
        self.assertEqual(res.rc, 0, res)
        files = tree(self.save_dir())
        self.assertEqual(sorted(files), ["index.html?q=1", "x", "x.1", "x.1.png", "x.2.png",
                                         "x.3.png", "x.png"])
        # No body overwrote another: each URL's bytes are there, under the manifest's name.
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            lines = {json.loads(l)["url"]: json.loads(l)["path"] for l in f}
        self.assertEqual(sorted(lines), sorted(urls))
        for u in urls:
            self.assertEqual(files[lines[u]], served(u), u)

    def test_the_same_url_twice_keeps_its_name(self):
        url = SRV.url("/save/a/x.png")
        for _ in range(2):
            res = self.run_areq(["--save", "saved", "--flat", "-o", "out.tsv", url,
                                 SRV.url("/save/b/x.png")])
            self.assertEqual(res.rc, 0, res)
        self.assertEqual(len(tree(self.save_dir())), 2)


class DiskTest(SaveTest):
    def unshare_run(self, script_mount, args, timeout=60):
        """Runs areq in a user and mount namespace after `script_mount` (shell), so that a
        tiny or read-only tmpfs can stand for a full or read-only disk. Skips where the
        system allows no such namespace."""
        probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                                "mount -t tmpfs -o size=64k none %s" % shlex.quote(self.tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode != 0:
            self.skipTest("unshare -rm with a tmpfs mount is not allowed here")
        cmd = script_mount + " && exec " + " ".join(shlex.quote(a) for a in common.areq_argv(args))
        t0 = time.monotonic()
        p = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], cwd=self.tmp,
                           env=common.areq_env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(timeout))
        return common.Result(p.returncode, p.stdout.decode(errors="replace"),
                             p.stderr.decode(errors="replace"), time.monotonic() - t0, self.tmp)

    def test_full_disk_ends_the_run(self):
        os.mkdir(self.save_dir())
        urls = [SRV.url("/save/full/%d.png?size=100000" % i) for i in range(12)]
        self.write_urls(urls)
        # 600 KB: some bodies fit, then the disk is full. The files saved before stay, whole;
        # there is no partial one, and the first failure is named.
        res = self.unshare_run(
            "mount -t tmpfs -o size=600k none saved",
            ["--save", "saved", "-o", "out.tsv", "-c", "2", "--manifest", "m.jsonl"])
        self.assertEqual(res.rc, 3, res)
        self.assertIn("cannot save into saved: No space left on device", res.err)
        self.assertEqual(sum("cannot save into" in l for l in res.err_lines()), 1, res.err)
        # The namespace is gone: what the tmpfs held went with it. The manifest (outside it)
        # lists the bodies that were complete, each a whole body.
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(l) for l in f]
        self.assertGreater(len(lines), 0)
        self.assertLess(len(lines), 12)
        for l in lines:
            self.assertEqual(l["sha256"], hashlib.sha256(served(l["url"])).hexdigest())

    def test_full_disk_leaves_no_partial_file(self):
        os.mkdir(self.save_dir())
        urls = [SRV.url("/save/full/%d.png?size=100000" % i) for i in range(12)]
        self.write_urls(urls)
        listing = os.path.join(self.tmp, "listing")
        # areq, then a listing of what the tmpfs holds, in one namespace.
        cmd_args = ["--save", "saved", "-o", "out.tsv", "-c", "2"]
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", "true"])
        if probe.returncode != 0:
            self.skipTest("unshare -rm is not allowed here")
        script = ("mount -t tmpfs -o size=600k none saved || exit 99; %s; echo $? > rc; "
                  "find saved -type f -printf '%%P %%s\\n' > %s"
                  % (" ".join(shlex.quote(a) for a in common.areq_argv(cmd_args)), listing))
        subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=self.tmp,
                       env=common.areq_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(60))
        if not os.path.exists(os.path.join(self.tmp, "rc")):
            self.skipTest("a tmpfs mount is not allowed here")
        with open(os.path.join(self.tmp, "rc")) as f:
            self.assertEqual(f.read().strip(), "3")
        with open(listing) as f:
            entries = [l.split() for l in f if l.strip()]
        self.assertGreater(len(entries), 0)
        for name, size in entries:
            self.assertFalse(os.path.basename(name).startswith(".areq-"), name)
            self.assertEqual(int(size), 100000, name)

    def test_read_only_directory(self):
        os.mkdir(self.save_dir())
        res = self.unshare_run("mount -t tmpfs -o ro,size=64k none saved",
                               ["--save", "saved", "-o", "out.tsv", SRV.url("/save/ro.png")])
        self.assertEqual(res.rc, 3, res)
        self.assertIn("cannot save into saved: Read-only file system", res.err)
        self.assertEqual(SRV.count("/save/ro.png"), 0)

    def test_directory_that_cannot_be_made(self):
        self.write("plain", "x")
        res = self.run_areq(["--save", "plain/sub", "-o", "out.tsv", SRV.url("/save/np.png")])
        self.assertEqual(res.rc, 3, res)
        self.assertIn("cannot save into plain/sub: Not a directory", res.err)
        self.assertEqual(SRV.count("/save/np.png"), 0)

    def test_two_runs_into_one_directory(self):
        urls = [SRV.url("/save/two/%d.png?size=%d" % (i, 20000 + i)) for i in range(40)]
        self.write_urls(urls)
        ps = [common.start_areq(["--save", "saved", "-o", "out%d.tsv" % k, "-c", "4"], self.tmp)
              for k in range(2)]
        for p in ps:
            out, err = p.communicate(timeout=scaled(60))
            self.assertEqual(p.returncode, 0, err)
        root = os.path.join(self.save_dir(), common.host_dir(SRV))
        self.assertSavedAsServed(root, {u: u.split(common.host_dir(SRV) + "/")[1] for u in urls})
        self.assertNoTemporaryFiles(self.save_dir())


class MemoryTest(SaveTest):
    def test_large_body_streams_in_flat_memory(self):
        # 1 GiB through areq (64 MiB under a wrapper such as valgrind, where peak RSS is
        # the wrapper's and is not measured).
        size = (64 if common.WRAPPER else 1024) * MB
        url = SRV.url("/save15/big?size=%d" % size)
        res, rss = measure_areq(["--save", "saved", "-o", "out.tsv", "--max-size", "0",
                                 "--manifest", "m.jsonl", url], self.tmp, timeout=300)
        self.assertEqual(res.rc, 0, res)
        path = os.path.join(self.save_dir(), common.host_dir(SRV), "save15", "big?size=%d" % size)
        self.assertEqual(os.path.getsize(path), size)
        self.assertTrue(SRV.completed(common.target_of(url)))
        with open(os.path.join(self.tmp, "m.jsonl"), encoding="utf-8") as f:
            line = json.loads(f.read())
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(MB), b""):
                h.update(block)
        self.assertEqual(line["sha256"], h.hexdigest())
        if rss is not None and not common.is_asan_build():
            self.assertLess(rss, 64 * 1024, "peak RSS %.1f MB for a %d MB body"
                            % (rss / 1024, size // MB))


if __name__ == "__main__":
    common.main()
