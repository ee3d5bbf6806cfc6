#!/bin/bash
# soak.sh: areq on 100,000 URLs at -c 1000 against the loopback fixture server, a tenth of
# them failing in assorted ways, with its memory sampled throughout. A benchmark, not a meson
# test.
#
# Usage (from anywhere):
#   tests/bench/soak.sh                        # 100000 URLs, -c 1000
#   N=20000 C=500 tests/bench/soak.sh          # smaller
#   AREQ_BIN=/path/to/areq KEEP=1 tests/bench/soak.sh
#
#   AREQ_BIN  areq binary (default build/src/areq in the repository)
#   N         number of URLs (default 100000);  C  concurrency, areq -c (default 1000)
#   KEEP=1    keep the work directory (kept anyway when a check fails); it holds urls.txt,
#             plan.tsv, foundurls.txt, stderr.txt, rss.txt and server.err
#   SERVER_LOG=1  have the fixture server write its request log (server.log in the work
#             directory) to see what happened to a URL; it slows the server a little
#
# What it does: starts tests/fixture/server.py on a free loopback port; soak.py gen writes
# the URLs (9 in 10 good /page URLs with 0..24 links each, some needing one retry; 1 in 10
# bad in rotation: 404, 500, 503-forever, refused port, reset, slow past --timeout, non-HTML;
# see soak.py's docstring); runs
#     areq -c C -t 3 --retries 1 -o foundurls.txt urls.txt
# sampling VmRSS from /proc/PID/status every 0.5 s; then soak.py check verifies every good
# URL's pairs are present exactly once, every failed URL is named on stderr, the non-HTML
# ones are skipped, the summary counts match, and memory is flat (max - median of the RSS
# samples within max(32 MB, 25% of the median)); it prints a table with the wall time and the
# first / median / max RSS samples. Exit status 0 when every check passes, 1 otherwise.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
areq=${AREQ_BIN:-$repo/build/src/areq}
n=${N:-100000}
c=${C:-1000}
py=${PYTHON:-python3}

[ -x "$areq" ] || { echo "soak.sh: $areq is not executable (set AREQ_BIN)" >&2; exit 2; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((c + 200)) ]; then
    echo "soak.sh: open files limit $(ulimit -n) is too low for -c $c" >&2
    exit 2
fi

work=$(mktemp -d /tmp/areq-soak.XXXXXX)
server_pid=
areq_pid=
cleanup() {
    [ -n "$areq_pid" ] && kill "$areq_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

log_args=()
[ "${SERVER_LOG:-0}" = 1 ] && log_args=(--log "$work/server.log")
"$py" "$repo/tests/fixture/server.py" --no-stdin "${log_args[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^PORT ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
port=$(awk '/^PORT /{print $2}' "$work/server.out")
[ -n "$port" ] || { echo "soak.sh: the fixture server did not start" >&2; cat "$work/server.err" >&2; exit 2; }

"$py" "$here/soak.py" gen "$port" "$n" "$work" || exit 2
echo "soak.sh: $n URLs, -c $c, server on port $port, work dir $work"

cd "$work" || exit 2
start=$(date +%s.%N)
"$areq" -c "$c" -t 3 --retries 1 -o foundurls.txt urls.txt 2>stderr.txt &
areq_pid=$!
: >rss.txt
while kill -0 "$areq_pid" 2>/dev/null; do
    awk '/^VmRSS:/{print $2}' "/proc/$areq_pid/status" >>rss.txt 2>/dev/null
    sleep 0.5
done
wait "$areq_pid"
rc=$?
areq_pid=
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b - a}')

"$py" "$here/soak.py" check "$work" "$rc" "$wall"
status=$?
if [ "$status" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "soak.sh: work directory kept: $work"
fi
exit "$status"
