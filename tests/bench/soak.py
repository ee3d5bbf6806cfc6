#!/usr/bin/env python3
"""Helper of soak.sh (standard library only).

    soak.py gen PORT N DIR       writes DIR/urls.txt (N URLs against the fixture server on
                                 127.0.0.1:PORT, a tenth of them bad) and DIR/plan.tsv (one
                                 line per URL: kind, expected outcome, URL, expected targets)
    soak.py check DIR RC WALL    checks DIR/foundurls.txt, DIR/stderr.txt and the RSS samples
                                 in DIR/rss.txt against the plan; prints a summary table;
                                 exits 1 when a check fails

Kinds of URL. Good (9 in 10): /page/soak/<i>/p.html?links=K with K = i % 25 (so 0..24 pairs
each), and one good URL in 50 is /flaky?fails=1, which needs the retry soak.sh allows
(--retries 1). Bad (1 in 10), in rotation:
  404       /status/404                   failed at once (not retried)
  500       /status/500                   failed after its retry
  flaky     /flaky?fails=5                503 every time: failed after its retry
  refused   a loopback port nothing listens on
  reset     /reset                        RST mid-body
  slow      /slow?delay=10                past soak.sh's --timeout 3
  binary    /binary                       not HTML: skipped, not failed, not named
Expected: every good URL's pairs exactly once, nothing from a bad URL, every failed URL named
on stderr, the summary's ok / failed / skipped counts equal to the plan's.
"""
import os
import re
import socket
import statistics
import sys

BAD_KINDS = ["404", "500", "flaky", "refused", "reset", "slow", "binary"]


def refused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def gen(port, n, d):
    origin = "http://127.0.0.1:%d" % port
    dead = refused_port()
    bad_seq = 0
    with open(os.path.join(d, "urls.txt"), "w") as urls, \
            open(os.path.join(d, "plan.tsv"), "w") as plan:
        for i in range(n):
            if i % 10 == 9:
                kind = BAD_KINDS[bad_seq % len(BAD_KINDS)]
                bad_seq += 1
                url = {
                    "404": "%s/status/404?i=%d" % (origin, i),
                    "500": "%s/status/500?i=%d" % (origin, i),
                    "flaky": "%s/flaky?key=soak%d&fails=5" % (origin, i),
                    "refused": "http://127.0.0.1:%d/refused/%d.html" % (dead, i),
                    "reset": "%s/reset?i=%d" % (origin, i),
                    "slow": "%s/slow?delay=10&i=%d" % (origin, i),
                    "binary": "%s/binary?i=%d" % (origin, i),
                }[kind]
                outcome = "skipped" if kind == "binary" else "failed"
                targets = []
            elif i % 50 == 3:
                kind, outcome = "retried", "ok"
                url = "%s/flaky?key=soak%d&fails=1" % (origin, i)
                targets = ["%s/flaky-ok.html" % origin]
            else:
                kind, outcome = "page", "ok"
                k = i % 25
                base = "%s/page/soak/%d/" % (origin, i)
                url = base + "p.html" + ("?links=%d" % k)
                targets = [base + "l%d.html" % j for j in range(k)]
            urls.write(url + "\n")
            plan.write("\t".join([kind, outcome, url] + targets) + "\n")


def check(d, rc, wall):
    problems = []
    plan = []
    with open(os.path.join(d, "plan.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            plan.append((p[0], p[1], p[2], p[3:]))

    # Output: whole lines, the header, source<TAB>target, each pair once.
    with open(os.path.join(d, "foundurls.txt"), "rb") as f:
        raw = f.read()
    got = {}
    dup = 0
    bad_lines = 0
    if not raw.endswith(b"\n"):
        problems.append("output does not end with a whole line")
    lines = raw.decode("utf-8", "replace").split("\n")[:-1]
    if not lines or lines[0] != "source_url\tparsed_url":
        problems.append("output does not start with the header")
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) != 2:
            bad_lines += 1
            continue
        s = got.setdefault(parts[0], set())
        if parts[1] in s:
            dup += 1
        s.add(parts[1])
    if bad_lines:
        problems.append("%d malformed output lines" % bad_lines)
    if dup:
        problems.append("%d pairs written more than once" % dup)

    with open(os.path.join(d, "stderr.txt"), encoding="utf-8", errors="replace") as f:
        err = f.read()
    named = set()
    for line in err.splitlines():
        m = re.match(r"areq: (https?://\S+?):? ", line)
        if m:
            named.add(m.group(1).rstrip(":"))

    counts = {}
    missing_pairs = wrong_pairs = unnamed = named_good = output_from_bad = 0
    expected_pairs = 0
    for kind, outcome, url, targets in plan:
        c = counts.setdefault(kind, [0, 0])
        c[0] += 1
        if outcome == "ok":
            expected_pairs += len(targets)
            have = got.get(url, set())
            if have == set(targets):
                c[1] += 1
            elif have < set(targets):
                missing_pairs += 1
            else:
                wrong_pairs += 1
            if url in named:
                named_good += 1
        else:
            ok = url not in got
            if not ok:
                output_from_bad += 1
            if outcome == "failed":
                if url in named:
                    c[1] += 1 if ok else 0
                else:
                    unnamed += 1
            else:  # skipped: not named, not written
                if url in named:
                    named_good += 1
                elif ok:
                    c[1] += 1
    extra_sources = set(got) - {u for _, _, u, _ in plan}
    for what, n in (("good URLs with pairs missing", missing_pairs),
                    ("good URLs with unexpected pairs", wrong_pairs),
                    ("failed URLs not named on stderr", unnamed),
                    ("good or skipped URLs named on stderr", named_good),
                    ("bad URLs with output", output_from_bad),
                    ("sources not in the input", len(extra_sources))):
        if n:
            problems.append("%d %s" % (n, what))

    want = {o: sum(1 for p in plan if p[1] == o) for o in ("ok", "failed", "skipped")}
    summary = err.strip().splitlines()[-1] if err.strip() else ""
    for o, n in want.items():
        m = re.search(r"(\d+) %s\b" % o, summary)
        if not m or int(m.group(1)) != n:
            problems.append("summary %r: expected %d %s" % (summary, n, o))
    if rc != 1:
        problems.append("exit status %d, expected 1" % rc)

    # Memory: samples of VmRSS (kB) every 0.5 s.
    with open(os.path.join(d, "rss.txt")) as f:
        rss = [int(x) for x in f.read().split()]
    if len(rss) < 3:
        problems.append("only %d RSS samples" % len(rss))
        rss = rss or [0]
    first, med, peak = rss[0], statistics.median(rss), max(rss)
    slack = max(32 * 1024, med * 0.25)
    flat = peak - med <= slack
    if not flat:
        problems.append("RSS not flat: max %.1f MB exceeds median %.1f MB by more than %.1f MB"
                        % (peak / 1024, med / 1024, slack / 1024))
    # A leak shows as a rising tail: compare the last quarter with the second quarter.
    q = max(1, len(rss) // 4)
    second_q, last_q = statistics.median(rss[q:2 * q] or rss), statistics.median(rss[-q:])

    mb = lambda kb: "%.1f MB" % (kb / 1024)  # noqa: E731
    print("")
    print("soak: %d URLs, wall %.1f s, %.0f URLs/s, exit %d" % (len(plan), wall, len(plan) / wall, rc))
    print("")
    print("%-10s %8s %8s  %s" % ("kind", "URLs", "as spec", "expected"))
    desc = {"page": "pairs exactly once", "retried": "pairs once (after a retry)",
            "binary": "skipped, not named, no output"}
    for kind in ["page", "retried"] + BAD_KINDS:
        if kind in counts:
            n, good = counts[kind]
            print("%-10s %8d %8d  %s" % (kind, n, good, desc.get(kind, "failed, named on stderr")))
    print("")
    print("pairs expected %d, lines written %d" % (expected_pairs, len(lines) - 1))
    print("summary line: %s" % summary)
    print("RSS samples: %d (every 0.5 s)  first %s  median %s  max %s  "
          "2nd-quarter median %s  last-quarter median %s"
          % (len(rss), mb(first), mb(med), mb(peak), mb(second_q), mb(last_q)))
    print("flat (max - median <= %s): %s" % (mb(slack), "yes" if flat else "NO"))
    print("")
    if problems:
        print("FAIL:")
        for p in problems:
            print("  - " + p)
        return 1
    print("PASS")
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "gen":
        gen(int(argv[2]), int(argv[3]), argv[4])
        return 0
    if len(argv) == 5 and argv[1] == "check":
        return check(argv[2], int(argv[3]), float(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
