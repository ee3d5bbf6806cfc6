#!/usr/bin/env python3
"""End-to-end tests of which links areq finds and how it writes them: the rich generated
site (quoting, letter case, character references, fragments, other schemes, dot segments,
white space), <base href>, --all-schemes, --keep-fragments and -P/--pattern.

Run by hand from the repository root:
    AREQ_BIN=build/src/areq python3 tests/e2e/test_links.py
"""
import os
import sys
import unittest
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import AreqTest, by_source, parse_output, site  # noqa: E402

PAGES, LINKS, SEED = 30, 40, "11"
SRV = None


setUpModule, tearDownModule = common.fixture_module(
    globals(), "--pages", str(PAGES), "--links", str(LINKS), "--seed", SEED)


def html_url(name, body):
    """A URL on the fixture server whose response is exactly `body` (text/html)."""
    return SRV.url("/html/%s?body=%s" % (name, quote(body, safe="")))


class LinksTest(AreqTest):
    def fetch(self, urls, *args):
        self.write_urls(urls)
        r = self.run_areq(["-o", "out.tsv"] + list(args))
        got = by_source(parse_output(self, r.read("out.tsv"))) if r.rc in (0, 1) else {}
        return r, got

    def test_rich_site_exact(self):
        want = site.expected_pairs(PAGES, LINKS, SEED, SRV.port, "rich")
        r, got = self.fetch(sorted(want))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got, {src: t for src, t in want.items() if t})

    def test_base_href_applies_to_every_link(self):
        body = ('<a href="before.html">b</a><head><base href="/base/dir/">'
                '<base href="/ignored/"></head><a href=after.html>a</a>')
        url = html_url("base.html", body)
        r, got = self.fetch([url])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got[url], {SRV.url("/base/dir/before.html"), SRV.url("/base/dir/after.html")})

    def test_other_schemes_and_fragments_dropped_by_default(self):
        body = ('<a href="mailto:a@b.invalid">m</a><a href="javascript:void(0)">j</a>'
                '<a href="tel:+1">t</a><a href="#top">f</a><a href="x.html#sec">x</a>')
        url = html_url("schemes.html", body)
        r, got = self.fetch([url])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got[url], {SRV.url("/html/x.html")})

    def test_all_schemes_keeps_them_as_written(self):
        body = '<a href="mailto:a@b.invalid">m</a><a href="javascript:void(0)">j</a><a href="y.html">y</a>'
        url = html_url("all-schemes.html", body)
        self.write_urls([url])
        r = self.run_areq(["-o", "out.tsv", "--all-schemes"])
        self.assertEqual(r.rc, 0, r)
        lines = r.read("out.tsv").splitlines()
        self.assertEqual(lines[0], "source_url\tparsed_url")
        pairs = [l.split("\t") for l in lines[1:]]
        self.assertTrue(all(len(p) == 2 and p[0] == url for p in pairs), lines)
        self.assertEqual({p[1] for p in pairs},
                         {"mailto:a@b.invalid", "javascript:void(0)", SRV.url("/html/y.html")})

    def test_keep_fragments(self):
        body = '<a href="#top">f</a><a href="x.html#Sec">x</a>'
        url = html_url("fragments.html", body)
        r, got = self.fetch([url], "--keep-fragments")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got[url], {url + "#top", SRV.url("/html/x.html#Sec")})

    def test_user_pattern_replaces_the_extractor(self):
        # The reference program's way: only double-quoted values, wherever they stand,
        # comments included; single-quoted attributes are not seen.
        body = '<a href="a.html">a</a><a href=\'b.html\'>b</a><!-- href="c.html" -->'
        url = html_url("pattern.html", body)
        r, got = self.fetch([url], "-P", 'href="(.*?)"')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got[url], {SRV.url("/html/a.html"), SRV.url("/html/c.html")})
        r, got = self.fetch([url], "--pattern", r"(?i)HREF='([^']*)'")
        self.assertEqual(got[url], {SRV.url("/html/b.html")})

    def test_bad_patterns_are_usage_errors(self):
        url = html_url("never.html", '<a href="x">x</a>')
        self.write_urls([url])
        for pattern in ("(unclosed", "href=[^ ]+", ""):
            r = self.run_areq(["-P", pattern])
            self.assertEqual(r.rc, 2, "-P %r: %r" % (pattern, r))
            self.assertIn("pattern", r.err)
        self.assertEqual(SRV.count(common.target_of(url)), 0)

    def test_unparsable_values_are_skipped_and_counted(self):
        body = ('<a href="http://[bad">1</a><a href="ok1.html">2</a>'
                '<a href="http://x:99999/">3</a><a href="ok2.html">4</a>')
        url = html_url("unparsable.html", body)
        r, got = self.fetch([url], "-v")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(got[url], {SRV.url("/html/ok1.html"), SRV.url("/html/ok2.html")})
        self.assertTrue(any(url in l and "2 unparsable" in l for l in r.err_lines()), r.err)

    def test_escaping_keeps_fields_clean(self):
        body = '<a href="a b\t\n&quot;c&lt;d&gt;.html">x</a><a href="caf&eacute;.html?q=&#x2F;">y</a>'
        url = html_url("escaping.html", body)
        r, got = self.fetch([url])
        self.assertEqual(r.rc, 0, r)
        # Tabs and newlines vanish, as the URL Standard says; the inner space is escaped.
        self.assertEqual(got[url], {SRV.url("/html/a%20b%22c%3Cd%3E.html"),
                                    SRV.url("/html/caf%C3%A9.html?q=/")})


if __name__ == "__main__":
    common.main()
