#!/usr/bin/env python3
"""gen_site.py: writes a deterministic benchmark site for areq.

    gen_site.py DIR [--pages 2000] [--links 150] [--size 74000] [--seed 1]
                    [--base http://127.0.0.1:8080]

DIR gets:
  p/00000.html ... p/NNNNN.html   the pages: ~SIZE bytes of realistic HTML each (head with
                                  meta/link/style/script, nav, article paragraphs, aside,
                                  footer), LINKS distinct link targets each
  small.html                      a ~2 KB page with 10 links, which nginx.sh serves for any
                                  /s/... path (per-URL overhead measurements)
  urls.txt                        one URL per page, under --base
  site.json                       the parameters and the expected number of output pairs

Every href is double-quoted and holds no character reference, so the reference program's
`href="(.*?)"` finds exactly the links a browser would; no href appears inside a comment,
script or style, and no link carries a #fragment. Each page's LINKS targets are distinct after
resolution (relative, ../-relative, root-relative, absolute, query strings), so areq and the
reference program both write PAGES * LINKS pairs. The same seed gives the same bytes.

Only --base changes urls.txt; `gen_site.py DIR --urls-only --base URL` rewrites just that file.
"""
import argparse
import json
import os
import random
import sys

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
         "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
         "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est "
         "laborum crawler fetch event loop socket buffer parser anchor resolve normalise "
         "latency throughput memory pool keepalive request response header body").split()

HOSTS = ("www.example.org", "cdn.example.net", "docs.example.com", "blog.example.io",
         "static.example.org", "news.example.com", "shop.example.net", "wiki.example.org")

SECTIONS = ("guide", "news", "ref", "blog", "faq", "about", "api", "tags")


def page_path(i):
    return "p/%05d.html" % i


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def link_targets(rng, i, pages, links):
    """LINKS distinct (href-as-written) values for page i; distinct after resolution too."""
    out = []
    used = set()  # canonical keys: resolved form

    def add(written, key):
        if key in used:
            return False
        used.add(key)
        out.append(written)
        return True

    # about 55% internal pages in various spellings, 15% internal with a query,
    # 10% other internal sections, 20% absolute to other hosts
    n_internal = int(links * 0.55)
    n_query = int(links * 0.15)
    n_section = int(links * 0.10)
    n_abs = links - n_internal - n_query - n_section
    others = [k for k in rng.sample(range(pages), min(pages, n_internal + n_query + 8)) if k != i]
    k = 0
    while len(out) < n_internal and k < len(others):
        j = others[k]
        k += 1
        name = "%05d.html" % j
        form = rng.randrange(4)
        if form == 0:
            written = name                       # same directory
        elif form == 1:
            written = "./" + name                # explicit same directory
        elif form == 2:
            written = "../p/" + name             # up and back down
        else:
            written = "/p/" + name               # root-relative
        add(written, "/p/" + name)
    while len(out) < n_internal:                 # tiny sites: fall back to made-up pages
        j = pages + len(out)
        add("/p/x%05d.html" % j, "/p/x%05d.html" % j)
    q = 0
    while len(out) < n_internal + n_query:
        j = rng.randrange(pages)
        # a bare '&' followed by a name no character reference starts with
        written = "/p/%05d.html?ref=%s&n=%d" % (j, rng.choice(SECTIONS), q)
        add(written, written)
        q += 1
    while len(out) < n_internal + n_query + n_section:
        s = rng.choice(SECTIONS)
        written = "/%s/%s-%d/" % (s, rng.choice(WORDS), rng.randrange(100000))
        add(written, written)
    while len(out) < links:
        host = rng.choice(HOSTS)
        path = "/%s/%s/%d" % (rng.choice(SECTIONS), rng.choice(WORDS), rng.randrange(10 ** 6))
        if rng.random() < 0.3:
            path += "?id=%d" % rng.randrange(10 ** 6)
        written = "https://%s%s" % (host, path)
        add(written, written)
    rng.shuffle(out)
    return out


STYLE = """
body{font-family:system-ui,sans-serif;margin:0;padding:0;color:#222;background:#fff}
header,footer{background:#f4f4f4;padding:1em 2em}nav ul{list-style:none;display:flex;gap:1em}
article{max-width:48em;margin:2em auto;line-height:1.6}aside{float:right;width:16em}
.card{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;margin:1em 0}
a{color:#0645ad}a:visited{color:#0b0080}code{background:#eee;padding:0 .2em}
@media (max-width:600px){aside{float:none;width:auto}nav ul{flex-direction:column}}
"""

SCRIPT = """
(function(){var d=document,w=window;function q(s){return d.querySelectorAll(s)}
var state={page:%d,seen:[],t0:Date.now()};
function track(e){var a=e.target.closest('a');if(!a)return;state.seen.push(a.getAttribute('data-i'));
if(state.seen.length>%d){state.seen.shift()}}
d.addEventListener('click',track,false);
w.addEventListener('load',function(){var n=q('a').length;if(w.console)console.log('links',n,
(Date.now()-state.t0)+'ms')});
var cfg={api:'/api/v1/items?page='+state.page,retry:3,backoff:[100,400,1600]};
function load(u,k){var x=new XMLHttpRequest();x.open('GET',u);x.onload=function(){k(x.responseText)};
x.send()}if(w.fetchLater){load(cfg.api,function(t){state.items=t.length})}})();
"""


def render_page(rng, i, pages, links, size):
    targets = link_targets(rng, i, pages, links)
    title = sentence(rng, 5)[:-1]
    parts = []
    a = parts.append
    a("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    a("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
    a("<title>%s &mdash; page %d</title>\n" % (title, i))
    a("<meta name=\"description\" content=\"%s\">\n" % sentence(rng, 18))
    # head links count among the page's targets (both programs see them)
    a("<link rel=\"stylesheet\" href=\"%s\">\n" % targets[0])
    a("<link rel=\"canonical\" href=\"%s\">\n" % targets[1])
    a("<style>%s</style>\n" % STYLE)
    a("<script>%s</script>\n" % (SCRIPT % (i, rng.randrange(5, 50))))
    a("</head>\n<body>\n<header><h1>%s</h1>\n<nav><ul>\n" % title)
    t = 2
    n_nav = 10
    for _ in range(n_nav):
        a("<li><a class=\"nav\" href=\"%s\">%s</a></li>\n" % (targets[t], rng.choice(WORDS).title()))
        t += 1
    a("</ul></nav></header>\n<!-- main content; the markup below is generated -->\n")
    a("<aside><div class=\"card\"><h2>Related</h2><ul>\n")
    n_aside = 12
    for _ in range(n_aside):
        a("<li><a href=\"%s\" title=\"%s\">%s</a></li>\n" % (
            targets[t], sentence(rng, 4)[:-1], sentence(rng, 3)[:-1]))
        t += 1
    a("</ul></div></aside>\n<article>\n")
    n_footer = 8
    body_links = len(targets) - t - n_footer
    # paragraphs carry the remaining links; pad text to reach the size target
    footer_estimate = 600 + n_footer * 90
    budget = size - sum(len(p) for p in parts) - footer_estimate - len(targets[t:]) - 40 * body_links
    n_par = max(1, body_links // 3 + 10)
    per_par = max(200, budget // n_par)
    for p in range(n_par):
        chunks = []
        length = 0
        while length < per_par:
            s = sentence(rng, rng.randrange(6, 18))
            chunks.append(s)
            length += len(s) + 1
            if t < len(targets) - n_footer and rng.random() < 0.25:
                h = "<a href=\"%s\">%s</a>" % (targets[t], " ".join(rng.choice(WORDS) for _ in range(2)))
                chunks.append(h)
                length += len(h) + 1
                t += 1
        if p % 7 == 3:
            a("<h2 id=\"s%d\">%s</h2>\n" % (p, sentence(rng, 4)[:-1]))
        if p % 11 == 5:
            a("<pre><code>for (i = 0; i &lt; n; i++) fetch(url[i]);</code></pre>\n")
        a("<p>%s</p>\n" % " ".join(chunks))
    while t < len(targets) - n_footer:           # any left over
        a("<p>See <a href=\"%s\">%s</a>.</p>\n" % (targets[t], rng.choice(WORDS)))
        t += 1
    have = sum(len(p) for p in parts) + footer_estimate
    while have < size:                           # top up with plain text to the size target
        para = "<p>%s</p>\n" % " ".join(sentence(rng, rng.randrange(6, 18)) for _ in range(6))
        a(para)
        have += len(para)
    a("</article>\n<footer><ul>\n")
    while t < len(targets):
        a("<li><a href=\"%s\">%s</a></li>\n" % (targets[t], sentence(rng, 2)[:-1]))
        t += 1
    a("</ul><p>&copy; 2024 Example &amp; Co. <img src=\"/img/logo.png\" alt=\"logo\"></p>\n")
    a("<script src=\"/js/app.js\" defer></script>\n</footer>\n</body>\n</html>\n")
    return "".join(parts)


SMALL = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>small</title></head>
<body><h1>Small page</h1>
<p>A small page served for any path under /s/, used to measure areq's per-URL overhead.</p>
<ul>
%s</ul>
<p>%s</p>
</body></html>
"""


def render_small(rng):
    hrefs = ["/", "/s/a.html", "b.html", "../c/d.html", "/e?f=1"]
    hrefs += ["https://www.example.org/%d" % k for k in range(5)]
    items = "".join("<li><a href=\"%s\">link %d</a></li>\n" % (h, k) for k, h in enumerate(hrefs))
    text = " ".join(sentence(rng, 12) for _ in range(12))
    return SMALL % (items, text)


def write_urls(out, pages, base):
    base = base.rstrip("/")
    tmp = os.path.join(out, "urls.txt.tmp")
    with open(tmp, "w") as f:
        for i in range(pages):
            f.write("%s/%s\n" % (base, page_path(i)))
    os.replace(tmp, os.path.join(out, "urls.txt"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--links", type=int, default=150)
    ap.add_argument("--size", type=int, default=74000, help="bytes per page, roughly")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--urls-only", action="store_true", help="rewrite urls.txt only")
    args = ap.parse_args()
    if args.links < 32:
        sys.exit("gen_site.py: --links must be at least 32")
    os.makedirs(os.path.join(args.dir, "p"), exist_ok=True)
    if not args.urls_only:
        total = 0
        for i in range(args.pages):
            rng = random.Random("%d/%d" % (args.seed, i))
            html = render_page(rng, i, args.pages, args.links, args.size).encode()
            total += len(html)
            with open(os.path.join(args.dir, page_path(i)), "wb") as f:
                f.write(html)
        with open(os.path.join(args.dir, "small.html"), "w") as f:
            f.write(render_small(random.Random(args.seed)))
        meta = {"pages": args.pages, "links": args.links, "size": args.size, "seed": args.seed,
                "bytes": total, "expected_pairs": args.pages * args.links}
        with open(os.path.join(args.dir, "site.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print("gen_site.py: %d pages, %.1f KB average, %d links each, %d pairs expected, in %s"
              % (args.pages, total / args.pages / 1000, args.links, meta["expected_pairs"], args.dir),
              file=sys.stderr)
    write_urls(args.dir, args.pages, args.base)


if __name__ == "__main__":
    main()
