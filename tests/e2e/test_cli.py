#!/usr/bin/env python3
"""End-to-end tests of areq as a command-line tool people already know how to use (issue 7):
output formats (-f), appending (-a), curl's -A/-H/-x/-k, the progress line, --help,
--version and usage errors, the man page (its examples are run) and the README's commands.
Everything talks to 127.0.0.1 only (the fixture server, also as a proxy and over TLS).

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_cli.py
    AREQ_BIN=build/src/areq python3 tests/e2e/test_cli.py -v ProgressTest
Needs util-linux `script` for the terminal tests, openssl for the TLS tests and man for the
man page lint; each is skipped, with the reason, when its program is missing.
"""
import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import quote, unquote, urljoin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, by_source, parse_output, scaled, target_of  # noqa: E402

REPO = common.REPO
MAN = os.path.join(REPO, "man", "areq.1")
README = os.path.join(REPO, "README.md")
DEMO = os.path.join(REPO, "data", "demo")
SRV = None


setUpModule, tearDownModule = common.fixture_module(globals())


def page(name, links=0, hrefs=()):
    """A fixture /page URL (already in areq's normal form) and its expected targets."""
    q = ["href=" + quote(h, safe="") for h in hrefs]
    if links:
        q.append("links=%d" % links)
    url = SRV.url("/page/%s%s" % (name, ("?" + "&".join(q)) if q else ""))
    return url, {urljoin(url, h) for h in list(hrefs) + ["l%d.html" % k for k in range(links)]}


def html_url(name, body):
    return SRV.url("/html/%s?body=%s" % (name, quote(body, safe="")))


def meson_version():
    with open(os.path.join(REPO, "meson.build"), encoding="utf-8") as f:
        m = re.search(r"project\s*\(.*?version\s*:\s*'([^']+)'", f.read(), re.S)
    return m.group(1)


def run_env(args, cwd, env_extra=None, timeout=30, stdin=subprocess.DEVNULL):
    """Like common.run_areq, with extra environment variables."""
    env = common.areq_env()
    env.update(env_extra or {})
    t0 = time.monotonic()
    p = subprocess.run(common.areq_argv(args), cwd=cwd, env=env, stdin=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(timeout))
    return common.Result(p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"), time.monotonic() - t0, cwd)


def bin_dir_with_areq(parent):
    """A directory holding `areq`: a symlink to the binary, or with AREQ_WRAPPER a script
    that runs it under the wrapper. Prepend it to PATH."""
    d = os.path.join(parent, "bin")
    os.mkdir(d)
    path = os.path.join(d, "areq")
    if common.WRAPPER:
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec %s \"$@\"\n" % shlex.join(common.areq_argv([])))
        os.chmod(path, 0o755)
    else:
        os.symlink(common.areq_bin(), path)
    return d


def parse_csv(tc, text, header=True):
    """Checks RFC 4180 form (CRLF after every record) and returns the pairs."""
    if text == "":
        tc.assertFalse(header, "csv output is empty: no header")
        return []
    tc.assertTrue(text.endswith("\r\n"), "csv does not end with CRLF: %r" % text[-100:])
    tc.assertNotIn("\n", text.replace("\r\n", ""), "a bare LF in csv output")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    if header:
        tc.assertEqual(rows[0], ["source_url", "parsed_url"])
        rows = rows[1:]
    else:
        tc.assertNotEqual(rows[0], ["source_url", "parsed_url"], "csv header despite --no-header")
    for r in rows:
        tc.assertEqual(len(r), 2, "csv record without two fields: %r" % r)
    return [tuple(r) for r in rows]


def parse_jsonl(tc, text):
    """Returns the objects of a JSON Lines output, checking each has the four fields."""
    if text == "":
        return []
    tc.assertTrue(text.endswith("\n"), "jsonl does not end with a newline")
    objs = []
    for line in text[:-1].split("\n"):
        try:
            o = json.loads(line)
        except ValueError as e:
            tc.fail("jsonl line does not parse (%s): %r" % (e, line))
        tc.assertIsInstance(o, dict, line)
        for k, t in (("source", str), ("target", str), ("status", int), ("depth", int)):
            tc.assertIn(k, o, "jsonl line without %r: %r" % (k, line))
            tc.assertIsInstance(o[k], t, "jsonl %r is not %s: %r" % (k, t.__name__, line))
        objs.append(o)
    return objs


def tty_text(b):
    """What a program wrote to the terminal; the tty turns each LF into CRLF."""
    return b.decode("utf-8", "replace").replace("\r\n", "\n")


def need_terminal(tc):
    """Skips tc, saying why, where util-linux script cannot give areq a terminal."""
    if not shutil.which("script"):
        tc.skipTest("util-linux script is not installed")
    try:
        # A chroot without /dev/pts mounted has no pseudo-terminals to give.
        master, slave = os.openpty()
        os.close(master)
        os.close(slave)
    except OSError as e:
        tc.skipTest("no pseudo-terminal can be opened (is /dev/pts mounted?): %s" % e)


def run_in_terminal(tc, args, cwd, timeout=30):
    """Runs areq with stdin, stdout and stderr on a pseudo-terminal (util-linux script);
    returns (exit status, what reached the terminal with CRLF turned into LF)."""
    need_terminal(tc)
    cmd = shlex.join(common.areq_argv(args))
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], cwd=cwd, env=common.areq_env(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=scaled(timeout))
    return p.returncode, tty_text(p.stdout)


def assert_no_status_line(tc, text, what):
    tc.assertNotIn("\r", text, "%s: a carriage return (status line) on stderr: %r" % (what, text))
    tc.assertNotIn("\x1b", text, "%s: an escape sequence on stderr: %r" % (what, text))


# --- output formats -------------------------------------------------------------------------

class FormatTest(AreqTest):
    def urls(self, tag):
        pages = [page("fmt-%s/p%d.html" % (tag, i), links=i + 1, hrefs=["/abs-%d.html" % i])
                 for i in range(6)]
        # A source and targets holding a comma, which csv must quote.
        pages.append(page("fmt-%s/a,b.html" % tag, hrefs=["c,d.html", "e.html?x=1,2"]))
        return dict(pages)

    def run_format(self, fmt, urls, extra=()):
        self.write_urls(list(urls))
        out = "out." + fmt
        r = self.run_areq(["-f", fmt, "-o", out] + list(extra) + ["urls.txt"])
        self.assertEqual(r.rc, 0, r)
        return r.read(out)

    def tsv_pairs(self, urls):
        self.write_urls(list(urls))
        r = self.run_areq(["-o", "ref.tsv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        pairs = parse_output(self, r.read("ref.tsv"))
        self.assertEqual(by_source(pairs), urls)
        return pairs

    def test_csv_matches_tsv(self):
        urls = self.urls("csv")
        ref = self.tsv_pairs(urls)
        texts = [self.run_format("csv", urls)]
        r = self.run_areq(["--format=csv", "-o", "out2.csv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        texts.append(r.read("out2.csv"))
        for text in texts:
            self.assertTrue(text.startswith("source_url,parsed_url\r\n"), text[:100])
            pairs = parse_csv(self, text)
            self.assertEqual(sorted(pairs), sorted(ref), "csv and tsv runs disagree")
            comma_src = [u for u in urls if "a,b" in u][0]
            self.assertIn('\r\n"%s",' % comma_src, text, "a field with a comma is not quoted")

    def test_csv_no_header(self):
        urls = self.urls("csvnh")
        text = self.run_format("csv", urls, ["--no-header"])
        self.assertEqual(by_source(parse_csv(self, text, header=False)), urls)

    def test_jsonl(self):
        urls = self.urls("jsonl")
        ref = self.tsv_pairs(urls)
        text = self.run_format("jsonl", urls)
        self.assertFalse(text.startswith("source_url"), "jsonl has a header line")
        objs = parse_jsonl(self, text)
        self.assertEqual(sorted((o["source"], o["target"]) for o in objs), sorted(ref))
        for o in objs:
            self.assertEqual(o["status"], 200, o)
            self.assertEqual(o["depth"], 0, o)
        # --no-header changes nothing for jsonl.
        self.assertEqual(sorted(parse_jsonl(self, self.run_format("jsonl", urls, ["--no-header"])),
                                key=lambda o: (o["source"], o["target"])),
                         sorted(objs, key=lambda o: (o["source"], o["target"])))

    def test_jsonl_status_is_the_pages(self):
        url = SRV.url("/status/203")
        ok, ok_t = page("fmt-status/ok.html", hrefs=["x.html"])
        self.write_urls([url, ok])
        r = self.run_areq(["-f", "jsonl", "-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        got = {(o["source"], o["target"], o["status"], o["depth"]) for o in parse_jsonl(self, r.out)}
        self.assertEqual(got, {(url, SRV.url("/from-status.html"), 203, 0),
                               (ok, list(ok_t)[0], 200, 0)})

    def test_all_schemes_targets_with_commas_and_quotes(self):
        body = ("<html><body>"
                "<a href='javascript:f(\"a,b\")'>js</a>"
                "<a href=\"mailto:a,b@c.invalid\">mail</a>"
                "<a href=\"javascript:g(&quot;c,d&quot;)\">ent</a>"
                "<a href='q\"x,y.html'>http</a>"
                "</body></html>")
        url = html_url("specials.html", body)
        expected = {'javascript:f("a,b")', "mailto:a,b@c.invalid", 'javascript:g("c,d")',
                    SRV.url("/html/q%22x,y.html")}
        self.write_urls([url])
        r = self.run_areq(["--all-schemes", "-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source((s, t) for s, t in (l.split("\t") for l in r.out.splitlines()[1:])),
                         {url: expected}, "tsv with --all-schemes")
        r = self.run_areq(["--all-schemes", "-f", "csv", "-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_csv(self, r.out)), {url: expected}, "csv: %r" % r.out)
        self.assertIn('"javascript:f(""a,b"")"', r.out, "quotes are not doubled inside quotes")
        r = self.run_areq(["--all-schemes", "-f", "jsonl", "-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source((o["source"], o["target"]) for o in parse_jsonl(self, r.out)),
                         {url: expected}, "jsonl: %r" % r.out)


# --- appending ------------------------------------------------------------------------------

class AppendTest(AreqTest):
    def run_append(self, urls, extra=()):
        self.write_urls(urls)
        r = self.run_areq(["-a", "-o", "out.tsv"] + list(extra) + ["urls.txt"])
        self.assertEqual(r.rc, 0, r)
        return r.read("out.tsv")

    def test_append_twice_to_a_new_file(self):
        a, at = page("app/a.html", links=3)
        b, bt = page("app/b.html", links=4)
        first = self.run_append([a])
        self.assertEqual(by_source(parse_output(self, first)), {a: at})
        second = self.run_append([b], ["--append"])
        self.assertTrue(second.startswith(first), "the first run's lines were not kept")
        self.assertEqual(second.count("source_url"), 1, "header written twice:\n" + second)
        self.assertEqual(by_source(parse_output(self, second[len(first):], header=False)), {b: bt})
        self.assertEqual(by_source(parse_output(self, second)), {a: at, b: bt})

    def test_append_csv_twice(self):
        a, at = page("appcsv/a.html", links=2)
        b, bt = page("appcsv/b.html", links=2)
        first = self.run_append([a], ["-f", "csv"])
        second = self.run_append([b], ["-f", "csv"])
        self.assertTrue(second.startswith(first))
        self.assertEqual(second.count("source_url,parsed_url"), 1, second)
        self.assertEqual(by_source(parse_csv(self, second)), {a: at, b: bt})

    def test_append_to_existing_empty_file_writes_header(self):
        a, at = page("appempty/a.html", links=2)
        self.write("out.tsv", "")
        self.assertEqual(by_source(parse_output(self, self.run_append([a]))), {a: at})

    def test_append_to_file_without_header_adds_none(self):
        a, at = page("appnohdr/a.html", links=2)
        old = "http://old.invalid/\thttp://old.invalid/x.html\n"
        self.write("out.tsv", old)
        text = self.run_append([a])
        self.assertTrue(text.startswith(old), "existing content changed: %r" % text[:200])
        self.assertNotIn("source_url", text, "header appended to a non-empty file")
        self.assertEqual(by_source(parse_output(self, text, header=False)),
                         {"http://old.invalid/": {"http://old.invalid/x.html"}, a: at})

    def test_without_append_the_file_is_replaced(self):
        a, at = page("appreplace/a.html", links=1)
        self.write("out.tsv", "junk\n" * 100)
        self.write_urls([a])
        r = self.run_areq(["-o", "out.tsv", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(by_source(parse_output(self, r.read("out.tsv"))), {a: at})

    def test_concurrent_appenders_do_not_interleave(self):
        n, links = 40, 300
        runs = {}
        for tag in ("A", "B"):
            pages = dict(page("conc%s/p%d.html" % (tag, i), links=links) for i in range(n))
            self.write_urls(list(pages), "urls%s.txt" % tag)
            runs[tag] = pages
        self.write("shared.tsv", common.HEADER + "\n")
        procs = [common.start_areq(["-a", "-q", "-o", "shared.tsv", "urls%s.txt" % tag], self.tmp)
                 for tag in runs]
        for p in procs:
            try:
                _, err = p.communicate(timeout=scaled(30))
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                self.fail("a concurrent appender did not finish")
            self.assertEqual(p.returncode, 0, err.decode("utf-8", "replace")[-2000:])
        with open(os.path.join(self.tmp, "shared.tsv"), encoding="utf-8", newline="") as f:
            text = f.read()
        # parse_output checks that every source's lines are contiguous and whole.
        pairs = parse_output(self, text)
        self.assertEqual(len(pairs), 2 * n * links)
        self.assertEqual(by_source(pairs), {**runs["A"], **runs["B"]})


# --- HTTP options: -A, -H, -x, -k -------------------------------------------------------------

def headers_seen(tc, res, url):
    """{lower-case name: [values]} that /headers-page reported, from areq's tsv stdout."""
    tc.assertEqual(res.rc, 0, res)
    pairs = parse_output(tc, res.out)
    prefix = urljoin(url, "/h/")
    out = {}
    for src, dst in pairs:
        tc.assertEqual(src, url)
        tc.assertTrue(dst.startswith(prefix), dst)
        name, _, value = dst[len(prefix):].partition("/")
        out.setdefault(unquote(name), []).append(unquote(value, encoding="latin-1"))
    return out


class HeaderTest(AreqTest):
    def fetch(self, tag, args):
        url = SRV.url("/headers-page?t=" + tag)
        self.write_urls([url])
        return headers_seen(self, self.run_areq(args + ["-o", "-", "urls.txt"]), url)

    def test_default_user_agent_is_versioned(self):
        r = self.run_areq(["--version"])
        version = r.out.split()[1]
        h = self.fetch("ua-default", [])
        self.assertEqual(h.get("user-agent"), ["areq/" + version])
        self.assertEqual(version, meson_version())
        self.assertEqual(h.get("accept"), ["*/*"], "libcurl's default Accept is not sent")

    def test_user_agent_option(self):
        ua = "Mozilla/5.0 (X11; e2e) areq-test/1.0"
        self.assertEqual(self.fetch("ua-short", ["-A", ua]).get("user-agent"), [ua])
        self.assertEqual(self.fetch("ua-long", ["--user-agent=" + ua + "x"]).get("user-agent"),
                         [ua + "x"])

    def test_extra_headers_are_repeatable(self):
        h = self.fetch("hdr", ["-H", "X-One: 1", "--header", "X-Two: two words",
                               "--header=X-Three:3", "-H", "X-Empty;"])
        self.assertEqual(h.get("x-one"), ["1"])
        self.assertEqual(h.get("x-two"), ["two words"])
        self.assertEqual(h.get("x-three"), ["3"])
        self.assertEqual(h.get("x-empty"), [""], "-H 'X-Empty;' must send an empty header")
        self.assertIn("user-agent", h)

    def test_header_removal(self):
        h = self.fetch("rm", ["-H", "Accept:"])
        self.assertNotIn("accept", h, "-H 'Accept:' must remove the Accept header")
        self.assertIn("host", h)

    def test_header_replaces_user_agent(self):
        h = self.fetch("ua-h", ["-H", "User-Agent: via-header"])
        self.assertEqual(h.get("user-agent"), ["via-header"])

    def test_user_agent_cannot_inject_headers(self):
        """A CR or LF in -A must not become a second header: rejected (exit 2) or stripped."""
        url = SRV.url("/headers-page?t=ua-crlf")
        self.write_urls([url])
        r = self.run_areq(["-A", "ua\r\nX-Injected: 1", "-o", "-", "urls.txt"])
        if r.rc == 2:
            self.assertEqual(r.out, "")
            self.assertEqual(SRV.count(target_of(url)), 0)
            return
        h = headers_seen(self, r, url)
        self.assertNotIn("x-injected", h, "-A with CR LF injected a request header")


class ProxyTest(AreqTest):
    URL = "http://areq-proxy-test.invalid/page/px%s?links=2"

    def check(self, res, url):
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(by_source(parse_output(self, res.read("out.tsv"))),
                         {url: {urljoin(url, "l0.html"), urljoin(url, "l1.html")}})
        self.assertTrue(SRV.count(url), "the proxy (fixture server) did not receive %s" % url)

    def test_proxy_option(self):
        for n, opt in enumerate((["-x", SRV.origin], ["--proxy", SRV.origin + "/"],
                                 ["--proxy=" + SRV.origin])):
            url = self.URL % n
            self.write_urls([url])
            self.check(self.run_areq(opt + ["-o", "out.tsv", "urls.txt"]), url)

    def test_http_proxy_variable(self):
        url = self.URL % "env"
        self.write_urls([url])
        env = {"http_proxy": SRV.origin, "no_proxy": "", "NO_PROXY": ""}
        self.check(run_env(["-o", "out.tsv", "urls.txt"], self.tmp, env), url)

    def test_proxy_option_overrides_variable(self):
        url = self.URL % "override"
        self.write_urls([url])
        env = {"http_proxy": "http://127.0.0.1:%d" % common.refused_port(),
               "no_proxy": "", "NO_PROXY": ""}
        self.check(run_env(["-x", SRV.origin, "--retries", "0", "-o", "out.tsv", "urls.txt"],
                           self.tmp, env), url)


class TlsTest(AreqTest):
    @classmethod
    def setUpClass(cls):
        cls.tls = None
        if not shutil.which("openssl"):
            raise unittest.SkipTest("the openssl program is not installed")
        cls.certdir = tempfile.mkdtemp(prefix="areq-tls-")
        cert, key = os.path.join(cls.certdir, "cert.pem"), os.path.join(cls.certdir, "key.pem")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-days", "1", "-keyout", key, "-out", cert],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("openssl req failed: %s" % p.stderr.decode(errors="replace"))
        cls.tls = common.FixtureServer("--tls", cert, key)
        cls.origin = "https://127.0.0.1:%d" % cls.tls.port

    @classmethod
    def tearDownClass(cls):
        if cls.tls:
            cls.tls.stop()
        shutil.rmtree(getattr(cls, "certdir", ""), ignore_errors=True)

    def test_self_signed_fails_without_k(self):
        url = self.origin + "/page/tls-strict.html?links=2"
        self.write_urls([url])
        r = self.run_areq(["--retries", "0", "urls.txt"])
        self.assertEqual(r.rc, 1, r)
        self.assertFailureReported(r, url)
        self.assertRegex(r.err.lower(), r"certificate", "the certificate problem is not named")
        self.assertEqual(parse_output(self, r.read()), [])

    def test_insecure_succeeds(self):
        for opt in ("-k", "--insecure"):
            url = self.origin + "/page/tls%s.html?links=2" % opt
            self.write_urls([url])
            r = self.run_areq([opt, "urls.txt"])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(by_source(parse_output(self, r.read())),
                             {url: {urljoin(url, "l0.html"), urljoin(url, "l1.html")}})
            self.assertTrue(self.tls.count(target_of(url)))


# --- progress line --------------------------------------------------------------------------

class ProgressTest(AreqTest):
    def setUp(self):
        super().setUp()
        # Enough slow pages that the line is drawn while transfers are in flight.
        self.pages = {SRV.url("/slow?delay=0.%d&p=%d" % (i % 4 + 1, i)):
                      {SRV.url("/slow-done.html")} for i in range(24)}
        self.write_urls(list(self.pages))

    def test_terminal_draws_and_clears(self):
        rc, tty = run_in_terminal(self, ["-o", "out.tsv", "urls.txt"], self.tmp)
        self.assertEqual(rc, 0, repr(tty))
        lines = [l for l in tty.split("\n") if l]
        self.assertTrue(lines, "nothing on the terminal")
        last = lines[-1]
        m = re.search(r"\r\x1b\[K([^\r\x1b]*)$", last)
        self.assertTrue(m, "the status line is not cleared before the summary: %r" % last)
        summary = m.group(1)
        self.assertRegex(summary, r"\d+ ok, \d+ failed", "summary: %r" % summary)
        drawn = re.findall(r"\r([^\r\x1b]+)\x1b\[K", last[:m.start()])
        self.assertTrue(drawn, "no status line drawn: %r" % last)
        self.assertTrue(all(re.search(r"\d", d) for d in drawn), drawn)
        text = self.read_out()
        self.assertEqual(by_source(parse_output(self, text)), self.pages)

    def test_in_flight_counts_transfers_with_state(self):
        """With --state up to -c more pages are under way than transfers (asking the store,
        or waiting for a slot): "in flight" counts the transfers, never more than -c."""
        rc, tty = run_in_terminal(self, ["-c", "2", "--state", "s.db", "-o", "out.tsv",
                                         "urls.txt"], self.tmp, timeout=60)
        self.assertEqual(rc, 0, repr(tty))
        counts = [int(n) for n in re.findall(r"(\d+) in flight", tty)]
        self.assertTrue(counts, "no status line drawn: %r" % tty)
        self.assertLessEqual(max(counts), 2, "more in flight than -c 2: %r" % counts)
        self.assertGreaterEqual(max(counts), 1, counts)

    def read_out(self, name="out.tsv"):
        with open(os.path.join(self.tmp, name), encoding="utf-8", newline="") as f:
            text = f.read()
        self.assertNotIn("\r", text)
        self.assertNotIn("\x1b", text)
        return text

    def test_terminal_stdout_output_unaffected(self):
        # stdout to a file, stderr on the terminal: the pairs stay clean.
        need_terminal(self)
        cmd = shlex.join(common.areq_argv(["-o", "-", "urls.txt"])) + " > out.tsv"
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], cwd=self.tmp,
                           env=common.areq_env(), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=scaled(30))
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("\x1b[K", tty_text(p.stdout), "no status line on the terminal")
        self.assertEqual(by_source(parse_output(self, self.read_out())), self.pages)

    def test_terminal_no_progress_and_quiet(self):
        for opt in ("--no-progress", "-q", "--quiet"):
            rc, tty = run_in_terminal(self, [opt, "-o", "out.tsv", "urls.txt"], self.tmp)
            self.assertEqual(rc, 0, repr(tty))
            assert_no_status_line(self, tty, opt)
            if opt != "--no-progress":
                self.assertEqual(tty, "", "%s: something on stderr: %r" % (opt, tty))
            else:
                self.assertRegex(tty, r"\d+ ok, \d+ failed")
            self.assertEqual(by_source(parse_output(self, self.read_out())), self.pages)

    def test_not_a_terminal_no_progress_by_default(self):
        r = self.run_areq(["-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        assert_no_status_line(self, r.err, "stderr a pipe")
        self.assertEqual(by_source(parse_output(self, r.out)), self.pages)

    def test_forced_progress_on_a_pipe(self):
        r = self.run_areq(["--progress", "-o", "-", "urls.txt"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("\r", r.err, "--progress drew nothing on stderr")
        self.assertRegex(r.err, r"\r[^\r\n]*\d[^\r\n]*")
        self.assertNotIn("\x1b", r.out)
        self.assertEqual(by_source(parse_output(self, r.out)), self.pages)  # no \r in stdout
        self.assertRegex(r.err_lines()[-1], r"\d+ ok, \d+ failed")


# --- --help, --version, usage errors ---------------------------------------------------------

def man_source():
    with open(MAN, encoding="utf-8") as f:
        return f.read()


def man_options():
    """{long option: .SS group} from the OPTIONS section of the man page."""
    src = man_source()
    sec = src.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    out, group, tag_next = {}, None, False
    for line in sec.split("\n"):
        if line.startswith(".SS "):
            group = line[4:].strip()
        elif line.startswith(".TP"):
            tag_next = True
        elif tag_next:
            tag_next = False
            for name in re.findall(r"\\-\\-([a-z][a-z0-9\\-]*)", line):
                out[name.replace("\\-", "-")] = group
    return out


def help_entries(text):
    """[(group, short or None, long, description)] from --help."""
    out, group = [], None
    for line in text.split("\n"):
        if re.match(r"^[A-Z][A-Za-z ]*:$", line):
            group = line[:-1]
            continue
        # An option starts at column 2 (with a short form) or 6; a wrapped description at 29.
        m = re.match(r"^  (?:(-[A-Za-z0-9]), |    )(--[a-z][a-z0-9-]*)(.*)$", line)
        if m:
            out.append([group, m.group(1), m.group(2)[2:], m.group(3)])
        elif out and line.startswith("    ") and line.strip():
            out[-1][3] += " " + line.strip()
        elif not line.strip():
            group = None
    return out


class HelpTest(AreqTest):
    def help(self):
        r = self.run_areq(["--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "")
        return r.out

    def test_version_matches_meson(self):
        for opt in ("-V", "--version"):
            r = self.run_areq([opt])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out, "areq %s\n" % meson_version())

    def test_help_lists_every_man_option_in_its_group(self):
        text = self.help()
        self.assertEqual(self.run_areq(["-h"]).out, text)
        entries = help_entries(text)
        by_long = {e[2]: e for e in entries}
        man = man_options()
        self.assertGreater(len(man), 20, man)
        for name, group in man.items():
            self.assertIn(name, by_long, "--%s is in the man page, not in --help" % name)
            self.assertEqual(by_long[name][0], group,
                             "--%s: group %r in --help, %r in the man page"
                             % (name, by_long[name][0], group))
        groups = [e[0] for e in entries]
        self.assertEqual([g for k, g in enumerate(groups) if g not in groups[:k]],
                         ["Input", "Fetching", "Recursion", "HTTP", "Links", "Output", "Messages"])

    def test_help_shows_defaults(self):
        entries = {e[2]: e[3] for e in help_entries(self.help())}
        defaults = {"concurrency": "100", "timeout": "30", "connect-timeout": "10",
                    "max-redirs": "10", "retries": "2", "max-size": "10M",
                    "user-agent": "areq/" + meson_version(), "output": "foundurls.txt",
                    "format": "tsv"}
        for name, value in defaults.items():
            self.assertRegex(entries[name], r"\(default %s\b" % re.escape(value),
                             "--%s: default %s not shown" % (name, value))
        self.assertIn("proxy", entries)
        self.assertIn("http_proxy", entries["proxy"])

    def test_usage_errors(self):
        url, _ = page("usage/never.html", links=1)
        self.write_urls([url])
        bad = [["--bogus", "urls.txt"], ["-Z", "urls.txt"], ["-f", "xml", "urls.txt"],
               ["--format", "TSVX", "urls.txt"], ["--format=", "urls.txt"], ["-f"],
               ["-H", "NoColon", "urls.txt"], ["--header", ": novalue", "urls.txt"],
               ["-H", "X-A: 1\r\nX-B: 2", "urls.txt"],
               ["--max-size", "abc", "urls.txt"], ["--max-size", "10X", "urls.txt"],
               ["--max-size", "-1", "urls.txt"], ["--max-size=", "urls.txt"], ["-x"], ["-A"]]
        for args in bad:
            r = self.run_areq(args)
            self.assertEqual(r.rc, 2, "areq %r: %r" % (args, r))
            self.assertTrue(r.err.strip(), "areq %r: no message on stderr" % args)
            self.assertEqual(r.out, "", "areq %r wrote to stdout" % args)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "foundurls.txt")),
                             "areq %r created the output file" % args)
        self.assertEqual(SRV.count(target_of(url)), 0, "a usage error still fetched URLs")


# --- the man page ---------------------------------------------------------------------------

ROFF_ESCAPES = {"\\-": "-", "\\(aq": "'", "\\(dq": '"', "\\e": "\\", "\\&": "", "\\~": " ",
                "\\(ti": "~", "\\(ha": "^", "\\(rs": "\\"}


def deroff(line, tc):
    def sub(m):
        return ROFF_ESCAPES[m.group(0)]
    pat = "|".join(re.escape(k) for k in sorted(ROFF_ESCAPES, key=len, reverse=True))
    out = re.sub(pat, sub, line)
    rest = re.sub(pat, "", line)
    tc.assertNotIn("\\", rest, "unhandled roff escape in example %r" % line)
    return out


def man_examples(tc):
    sec = man_source().split("\n.SH EXAMPLES\n", 1)[1].split("\n.SH ", 1)[0]
    return [deroff(l, tc)[2:] for l in sec.split("\n") if l.startswith("$ ")]


class ManPageTest(AreqTest):
    def test_man_has_no_warnings(self):
        if not shutil.which("man"):
            self.skipTest("man is not installed")
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        p = subprocess.run(["man", "--warnings", "-l", MAN], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.decode(errors="replace"), "", "man --warnings complained")
        self.assertIn(b"EXAMPLES", p.stdout)

    def test_every_help_option_is_in_man(self):
        r = self.run_areq(["--help"])
        src = man_source().replace("\\-", "-")
        entries = help_entries(r.out)
        self.assertGreater(len(entries), 20)
        for group, short, long, _ in entries:
            self.assertRegex(src, r"(?<![\w-])--%s(?![\w-])" % re.escape(long),
                             "--%s is in --help, not in the man page" % long)
            if short:
                self.assertRegex(src, r"\.BR %s \", \" --%s\b" % (re.escape(short), long),
                                 "%s, --%s not tagged together in the man page" % (short, long))

    def test_examples_run(self):
        examples = man_examples(self)
        self.assertGreaterEqual(len(examples), 4, examples)
        bindir = bin_dir_with_areq(self.tmp)
        work = os.path.join(self.tmp, "work")
        os.mkdir(work)
        pages = dict(page("man/p%d.html" % i, links=3, hrefs=["/shared.html"]) for i in range(5))
        self.write_urls(list(pages), os.path.join("work", "urls.txt"))
        env = common.areq_env()
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        host = "127.0.0.1:%d" % SRV.port
        for ex in examples:
            cmd = ex.replace("127.0.0.1:8000", host)
            rc, out, err = self.run_example(cmd, work, env)
            self.assertEqual(rc, 0, "example %r exited %d: %s" % (cmd, rc, err))
            m = re.search(r"-o (\S+)", cmd)
            if m and m.group(1) != "-":
                produced = os.path.join(work, m.group(1))
            elif not m:
                produced = os.path.join(work, "foundurls.txt")
            else:
                produced = None
            if produced:
                self.assertTrue(os.path.exists(produced) and os.path.getsize(produced) > 0,
                                "example %r wrote no %s" % (cmd, produced))
                self.assertEqual(out, "", "example %r printed to stdout" % cmd)
                with open(produced, encoding="utf-8") as f:
                    out = f.read()
            else:
                self.assertTrue(out.strip(), "example %r printed nothing" % cmd)
            # Every example's output shows what areq found on the fixture pages.
            # Examples that name the server's root start from it (it links /site/p0.html);
            # the others read the fixture pages of urls.txt.
            if "cut -f1" in cmd:
                want = SRV.url("/")
            elif host + "/" in cmd:
                want = SRV.url("/site/p0.html")
            else:
                want = SRV.url("/shared.html")
            self.assertIn(want, out,
                          "example %r: %r" % (cmd, out[:500]))

    def run_example(self, cmd, work, env):
        for f in os.listdir(work):
            if f != "urls.txt":
                os.remove(os.path.join(work, f))
        p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(30))
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))


# --- README ---------------------------------------------------------------------------------

DEMO_PAIRS = {
    "/": ["/style.css", "/guide/", "/guide/links.html", "/about.html", "/missing.html",
          "https://example.org/"],
    "/about.html": ["/", "/guide/index.html?from=about&lang=en"],
    "/guide/": ["/", "/guide/links.html", "/about.html"],
    "/guide/links.html": ["/index.html", "/guide/index.html", "/about.html"],
}


# Debian packages of the usual dependencies, when dpkg cannot say.
DEBIAN_DEV = {"libcurl": "libcurl4-openssl-dev", "libuv": "libuv1-dev",
              "libpcre2-8": "libpcre2-dev", "libidn2": "libidn2-dev", "cmocka": "libcmocka-dev"}


def build_dependencies():
    """{meson dependency name: Debian package providing its .pc file} over every
    meson.build of the source tree (build directories left out)."""
    names = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
        if "meson.build" in files:
            with open(os.path.join(root, "meson.build"), encoding="utf-8") as f:
                names.update(re.findall(r"\bdependency\s*\(\s*'([^']+)'", f.read()))
    out = {}
    for name in sorted(names):
        pkg = DEBIAN_DEV.get(name)
        try:
            pc = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True,
                                timeout=10).stdout.strip()
            owner = subprocess.run(["dpkg", "-S", pc], capture_output=True, text=True,
                                   timeout=10).stdout if pc else ""
            if owner:
                pkg = owner.split(":", 1)[0].split(",")[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
        if pkg:
            out[name] = pkg
    return out


class ReadmeTest(AreqTest):
    def code_lines(self):
        with open(README, encoding="utf-8") as f:
            text = f.read()
        lines = [l[4:] for l in text.split("\n") if l.startswith("    ")]
        in_fence = False
        for l in text.split("\n"):
            if l.startswith("```"):
                in_fence = not in_fence
            elif in_fence:
                lines.append(l)
        return [l.strip() for l in lines]

    def test_one_command_installs_builds_and_runs_demo(self):
        found = None
        for l in self.code_lines():
            steps = [s.strip() for s in l.split("&&")]
            installs = [k for k, s in enumerate(steps) if "apt-get install" in s]
            if len(steps) >= 3 and installs and steps[-1].startswith("data/demo"):
                found = steps[installs[0]:]
                # A fresh system has empty package lists: an update comes first.
                self.assertTrue(any("apt-get update" in s for s in steps[:installs[0]]),
                                "no apt-get update before apt-get install: %s" % l)
        self.assertTrue(found, "no single command line that installs, builds and runs data/demo")
        pkgs = set(found[0].split())
        for pkg in ("gcc", "meson", "ninja-build", "pkg-config", "python3"):
            self.assertIn(pkg, pkgs, "the install command misses " + pkg)
        for dep, pkg in build_dependencies().items():
            self.assertIn(pkg, pkgs, "the install command misses %s (for the meson "
                          "dependency %r)" % (pkg, dep))
        self.assertIn("-y", pkgs)
        joined = " && ".join(found[1:])
        self.assertRegex(joined, r"meson setup build\b")
        self.assertRegex(joined, r"(meson compile -C build|ninja -C build)")

    def test_test_command(self):
        self.assertIn("meson test -C build", self.code_lines())

    def test_demo_runs(self):
        env = common.areq_env()
        argv = ["sh", DEMO]
        if common.WRAPPER:
            argv.append(os.path.join(bin_dir_with_areq(self.tmp), "areq"))
        else:
            argv.append(common.areq_bin())
        p = subprocess.run(argv, cwd=self.tmp, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=scaled(30))
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "a first run should end well: %s" % err)
        pairs = parse_output(self, out)
        self.assertTrue(pairs, "the demo printed no pairs")
        base = re.match(r"http://127\.0\.0\.1:\d+", pairs[0][0]).group(0)
        expected = {base + s: {t if "://" in t else base + t for t in ts}
                    for s, ts in DEMO_PAIRS.items()}
        self.assertEqual(by_source(pairs), expected)
        # The demo lists missing.html on purpose: areq's only failure, which the demo explains.
        fails = [l for l in err.splitlines() if l.startswith("areq: http")]
        self.assertEqual(len(fails), 1, err)
        self.assertIn(base + "/missing.html", fails[0])
        self.assertIn("404", fails[0])
        self.assertRegex(err.splitlines()[-1], r"^demo: .*status 1.*missing\.html.*on purpose", err)


if __name__ == "__main__":
    common.main()
