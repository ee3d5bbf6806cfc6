#!/bin/sh
# nginx.sh: Debian's nginx serving a directory on a loopback port, for areq's benchmarks.
#
#   nginx.sh start DIR [PORT]   start it (PORT 0 or absent: a free port); prints the port
#   nginx.sh stop               stop the instance this script started
#   nginx.sh status             print the port if it is running
#
# Everything lives under $AREQ_BENCH_TMP (default /tmp/areq-bench-nginx.$(id -u)): config,
# pid file, error log, temp paths. access_log off, keepalive on, worker_processes 2,
# worker_connections 20000, sendfile, listen backlog 16384 (the kernel caps it at
# net.core.somaxconn). Besides the files of DIR it answers any /s/... path with DIR/small.html
# (distinct URLs for per-URL measurements) and /ok with a short built-in page.
# Runs as the current user; as root, workers stay root too (they only read DIR).
set -eu

prefix=${AREQ_BENCH_TMP:-/tmp/areq-bench-nginx.$(id -u)}
nginx=${NGINX:-/usr/sbin/nginx}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
    [ -f "$prefix/nginx.pid" ] && kill -0 "$(cat "$prefix/nginx.pid")" 2>/dev/null
}

cmd=${1:-}
case $cmd in
start)
    dir=${2:?usage: nginx.sh start DIR [PORT]}
    port=${3:-0}
    [ -x "$nginx" ] || { echo "nginx.sh: $nginx not found (apt-get install nginx-light)" >&2; exit 1; }
    [ -d "$dir" ] || { echo "nginx.sh: $dir: no such directory" >&2; exit 1; }
    dir=$(cd "$dir" && pwd)
    if running; then
        echo "nginx.sh: already running (pid $(cat "$prefix/nginx.pid")); stop it first" >&2
        exit 1
    fi
    [ "$port" = 0 ] && port=$(free_port)
    mkdir -p "$prefix/tmp"
    # the workers need descriptors for 20000 connections each
    hard=$(ulimit -Hn)
    ulimit -n "$hard" 2>/dev/null || true
    nofile=$(ulimit -n)
    user=
    [ "$(id -u)" = 0 ] && user="user root;"
    # somaxconn caps the listen backlog silently
    somax=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo "?")
    if [ "$somax" != "?" ] && [ "$somax" -lt 16384 ]; then
        echo "nginx.sh: note: net.core.somaxconn is $somax, which caps the listen backlog of 16384" >&2
    fi
    cat >"$prefix/nginx.conf" <<EOF
$user
worker_processes 2;
worker_rlimit_nofile $nofile;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
daemon on;
events {
    worker_connections 20000;
    multi_accept on;
}
http {
    default_type application/octet-stream;
    types { text/html html htm; text/plain txt; }
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=10000 inactive=60s;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=16384 reuseport;
        server_name localhost;
        root $dir;
        location /s/ { default_type text/html; try_files /small.html =404; }
        location = /ok { default_type text/html; return 200 "<html><body><a href=\"/\">home</a></body></html>\n"; }
    }
}
EOF
    "$nginx" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
        || { echo "nginx.sh: nginx did not start; see $prefix/error.log" >&2; exit 1; }
    echo "$port" >"$prefix/port"
    # wait until it answers
    i=0
    while ! /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 50 ] && { echo "nginx.sh: port $port never answered" >&2; exit 1; }
        sleep 0.1
    done
    echo "$port"
    ;;
stop)
    if running; then
        pid=$(cat "$prefix/nginx.pid")
        "$nginx" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -s quit 2>/dev/null || kill "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$prefix/port"
    ;;
status)
    if running; then cat "$prefix/port"; else echo "nginx.sh: not running" >&2; exit 1; fi
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
