#!/usr/bin/env python3
"""The README's table of options, made from `areq --help`, so that the two cannot drift.

    areq --help | tests/readme_options.py            # prints the table
    areq --help | tests/readme_options.py --check README.md
                                                     # exit 1 and a diff if README's differs

The table in README.md runs from the line '| option | meaning |' to the first line after it
that does not start with '|'."""
import difflib
import re
import sys

HEAD = "| option | meaning |"


def table(help_text):
    rows, cur = [], None
    started = False
    for line in help_text.split("\n"):
        m = re.match(r"^(\w[\w ]*):$", line)
        if m:
            started = True
            rows.append(("group", m.group(1)))
            cur = None
            continue
        if not started:
            continue
        m = re.match(r"^  (?:(-\w), |    )(--[\w-]+)(?: ([^ ]+(?: [^ ]+)*?))?(?:\s{2,}(.*))?$",
                     line)
        if m:
            cur = ["opt", m.group(1), m.group(2), m.group(3), m.group(4) or ""]
            rows.append(cur)
        elif cur is not None and line.startswith(" " * 29):
            cur[4] = (cur[4] + " " + line.strip()).strip()
        else:
            cur = None
    out = [HEAD, "| --- | --- |"]
    for r in rows:
        if r[0] == "group":
            out.append("| **%s** | |" % r[1])
            continue
        _, short, long, meta, text = r
        spelled = ("`%s`, " % short if short else "") + "`%s%s`" % (long, " " + meta if meta else "")
        out.append("| %s | %s |" % (spelled.replace("|", "\\|"), text.replace("|", "\\|")))
    return out


def readme_table(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = lines.index(HEAD)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def main(argv):
    want = table(sys.stdin.read())
    if len(argv) == 3 and argv[1] == "--check":
        got = readme_table(argv[2])
        if got != want:
            sys.stdout.writelines(l + "\n" for l in difflib.unified_diff(
                got, want, argv[2], "areq --help", lineterm=""))
            return 1
        return 0
    print("\n".join(want))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
