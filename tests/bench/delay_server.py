#!/usr/bin/env python3
"""delay_server.py: an HTTP/1.1 server on loopback that answers every request after a delay.

    delay_server.py [--delay 1.0] [--port 0] [--backlog 16384] [--workers 1] [--links 5]

Prints the port on the first line of standard output, then serves until SIGINT or SIGTERM.
Every GET (or HEAD) gets, DELAY seconds after its request arrived, a 200 text/html page of a
few hundred bytes with LINKS links (relative, root-relative and absolute); a target whose path
ends in .png gets a 2 KB image/png body instead. A query parameter
`delay=SECONDS` overrides the delay for that request. Keep-alive (HTTP/1.1 default; HTTP/1.0
or `Connection: close` closes after the answer); pipelined requests are answered in order.

Built for >= 10,000 concurrent connections: it raises its soft RLIMIT_NOFILE to the hard
limit, listens with a large backlog (net.core.somaxconn caps it; the server says so on stderr
when it does), and holds no per-connection task: a connection is a protocol object and each
answer is a timer. --workers N forks N processes sharing the port with SO_REUSEPORT. Uses
uvloop when it is importable (--no-uvloop to refuse it). It is the project's own test peer,
for loopback only.
"""
import argparse
import asyncio
import os
import resource
import signal
import socket
import sys

PAGE = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>delayed %s</title></head>\n"
        "<body><h1>Answered after %gs</h1>\n<ul>\n%s</ul>\n</body></html>\n")


def make_body(path, delay, links):
    # a few links that depend on the path, so pairs differ from page to page
    tail = path.rsplit("/", 1)[-1].split("?", 1)[0] or "index"
    hrefs = []
    for k in range(links):
        form = k % 3
        if form == 0:
            hrefs.append("%s-%d.html" % (tail, k))
        elif form == 1:
            hrefs.append("/d/%s/%d" % (tail, k))
        else:
            hrefs.append("https://www.example.org/%s/%d" % (tail, k))
    items = "".join("<li><a href=\"%s\">link %d</a></li>\n" % (h, k) for k, h in enumerate(hrefs))
    return (PAGE % (tail, delay, items)).encode()


# A target ending in .png gets this image/png body instead of a page (bench/save.py).
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes((i * 37 + 11) % 256 for i in range(2040))


class Conn(asyncio.Protocol):
    __slots__ = ("loop", "cfg", "transport", "buf", "last", "closing")

    def __init__(self, loop, cfg):
        self.loop = loop
        self.cfg = cfg
        self.transport = None
        self.buf = b""
        self.last = 0.0       # when the previous answer on this connection is due
        self.closing = False

    def connection_made(self, transport):
        self.transport = transport
        if self.cfg["timeline"] is not None:
            self.cfg["timeline"]["accepted"].append(self.loop.time())
        self.cfg["conns"] += 1
        if self.cfg["conns"] > self.cfg["peak"]:
            self.cfg["peak"] = self.cfg["conns"]

    def connection_lost(self, exc):
        self.cfg["conns"] -= 1
        self.transport = None  # a timer still due finds it gone and does nothing

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        while not self.closing:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self.transport.close()
                    return
                break
            head = buf[:end]
            buf = buf[end + 4:]
            lines = head.split(b"\r\n")
            parts = lines[0].split()
            if len(parts) != 3:
                self.respond_now(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.closing = True
                break
            method, target, version = parts
            close = version == b"HTTP/1.0"
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"connection":
                    v = value.strip().lower()
                    if v == b"close":
                        close = True
                    elif v == b"keep-alive":
                        close = False
                elif name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        length = 0
            if length:  # a body we do not need: skip it (only if already here)
                buf = buf[length:]
            self.schedule(method, target.decode("latin-1"), close)
            if close:
                self.closing = True
        self.buf = buf

    def respond_now(self, raw):
        if self.transport is not None:
            self.transport.write(raw)

    def schedule(self, method, target, close):
        delay = self.cfg["delay"]
        if "delay=" in target:
            try:
                delay = float(target.split("delay=", 1)[1].split("&", 1)[0])
            except ValueError:
                pass
        now = self.loop.time()
        if self.cfg["timeline"] is not None:
            self.cfg["timeline"]["requested"].append(now)
        due = max(now + delay, self.last)  # answers stay in request order
        self.last = due
        body = self.cfg["cache"].get(target)
        ctype = "text/html; charset=utf-8"
        if target.split("?", 1)[0].endswith(".png"):
            body, ctype = IMAGE, "image/png"  # issue 15: small images for bench/save.py
        if body is None:
            body = make_body(target, delay, self.cfg["links"])
            if len(self.cfg["cache"]) < 100000:
                self.cfg["cache"][target] = body
        head = ("HTTP/1.1 200 OK\r\nContent-Type: %s\r\n" % ctype +
                "Content-Length: %d\r\n%s\r\n" % (len(body), "Connection: close\r\n" if close else "")).encode()
        raw = head if method == b"HEAD" else head + body
        self.loop.call_at(due, self.answer, raw, close)

    def answer(self, raw, close):
        t = self.transport
        if t is None:
            return
        self.cfg["served"] += 1
        t.write(raw)
        if self.cfg["timeline"] is not None:
            self.cfg["timeline"]["answered"].append(self.loop.time())
        if close:
            t.close()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def make_socket(host, port, backlog, reuseport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    s.listen(backlog)
    s.setblocking(False)
    return s


async def serve(sock, cfg, backlog):
    loop = asyncio.get_running_loop()
    cfg["loop"] = loop
    server = await loop.create_server(lambda: Conn(loop, cfg), sock=sock, backlog=backlog)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    if cfg["timeline"] is not None:  # SIGUSR1: print the timeline so far and start a new one
        loop.add_signal_handler(signal.SIGUSR1, print_timeline, cfg["timeline"])
    await stop
    server.close()
    if cfg["timeline"] is not None:
        print_timeline(cfg["timeline"])
    if cfg["verbose"]:
        print("delay_server.py[%d]: served %d, peak %d connections" % (os.getpid(), cfg["served"], cfg["peak"]),
              file=sys.stderr)


def print_timeline(tl):
    # when, after the first connection arrived, connections were accepted, requests read and
    # answers written: shows whether a client is slow to open connections or to send requests
    if not tl["accepted"]:
        return
    t0 = tl["accepted"][0]
    for what in ("accepted", "requested", "answered"):
        ts = sorted(t - t0 for t in tl[what])
        if not ts:
            continue
        cut = [ts[min(len(ts) - 1, int(len(ts) * q))] for q in (0.0, 0.5, 0.9, 0.99, 1.0)]
        print("delay_server.py[%d]: %-9s %6d  first %.3f  p50 %.3f  p90 %.3f  p99 %.3f  last %.3f s"
              % ((os.getpid(), what, len(ts)) + tuple(cut)), file=sys.stderr)
    for what in tl:
        tl[what].clear()


def run_worker(sock, args):
    cfg = {"delay": args.delay, "links": args.links, "cache": {}, "conns": 0, "peak": 0, "served": 0,
           "verbose": args.verbose,
           "timeline": {"accepted": [], "requested": [], "answered": []} if args.timeline else None}
    if not args.no_uvloop:
        try:
            import uvloop  # optional
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    asyncio.run(serve(sock, cfg, args.backlog))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay", type=float, default=1.0, help="seconds before each answer (default 1)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    ap.add_argument("--backlog", type=int, default=16384)
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    ap.add_argument("--links", type=int, default=5, help="links per page (default 5)")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--timeline", action="store_true",
                    help="at exit, percentiles of accept, request and answer times (seconds after the first accept)")
    ap.add_argument("-v", "--verbose", action="store_true", help="a summary line per worker at exit")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("delay_server.py: loopback only")

    nofile = raise_nofile()
    if nofile < 12000:
        print("delay_server.py: note: RLIMIT_NOFILE is %d; 10,000 connections need more" % nofile, file=sys.stderr)
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            somax = int(f.read())
        if somax < args.backlog:
            print("delay_server.py: note: net.core.somaxconn is %d, which caps the listen backlog of %d"
                  % (somax, args.backlog), file=sys.stderr)
    except (OSError, ValueError):
        pass

    reuse = args.workers > 1
    first = make_socket(args.host, args.port, args.backlog, reuse)
    port = first.getsockname()[1]
    socks = [first] + [make_socket(args.host, port, args.backlog, True) for _ in range(args.workers - 1)]
    print(port, flush=True)
    if args.workers == 1:
        run_worker(first, args)
        return
    children = []
    for s in socks:
        pid = os.fork()
        if pid == 0:
            for o in socks:
                if o is not s:
                    o.close()
            try:
                run_worker(s, args)
            finally:
                os._exit(0)
        children.append(pid)
    for s in socks:
        s.close()

    def forward(sig, _frame):
        for c in children:
            try:
                os.kill(c, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for c in children:
        while True:
            try:
                os.waitpid(c, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


if __name__ == "__main__":
    main()
