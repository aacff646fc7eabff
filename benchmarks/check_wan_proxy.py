"""Check that ``wan_proxy.py`` emulates the link it claims, and measure its own ceiling.

Against a small threaded TCP server on loopback (commands: ``PING`` echo one byte at a
time, ``SEND n`` then close, ``SINK`` count until EOF then answer, ``ECHO`` until EOF,
``RESET`` some bytes then an RST):

* first-byte latency on an open connection ≈ 2×D, and connect + first byte ≈ 4×D
  (the emulated TCP handshake);
* one connection is capped near R MB/s each way, and two connections get R each;
* a half-close (shutdown(SHUT_WR)) passes through and the answer still arrives;
* a reset upstream and a refused upstream close the client's side promptly, and no
  connection, task or thread is left behind;
* with no delay and no cap (``--rate-mbps 0``): the proxy's own ceiling, 1 and 4 connections.

Timing checks run against the proxy as a child process (as the benchmarks use it); the
leak checks against the in-process :class:`WanProxy`, whose counters can be read.

    python benchmarks/check_wan_proxy.py [--delay-ms 10] [--rate-mbps 50] [--mib 32]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import statistics
import struct
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from wan_proxy import LOOPBACK, WanProxy, WanProxyProcess

MiB = 1024 * 1024
BLOCK = bytes(range(256)) * 1024  # 256 KiB


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        command = b""
        while not command.endswith(b"\n"):
            byte = sock.recv(1)
            if not byte:
                return
            command += byte
        verb, *arg = command.decode().split()
        if verb == "PING":
            while byte := sock.recv(1):
                sock.sendall(byte)
        elif verb == "SEND":
            left = int(arg[0])
            while left > 0:
                left -= sock.send(BLOCK[: min(left, len(BLOCK))])
        elif verb == "SINK":
            total = 0
            while data := sock.recv(MiB):
                total += len(data)
            sock.sendall(f"{total}\n".encode())
        elif verb == "ECHO":
            while data := sock.recv(65536):
                sock.sendall(data)
        elif verb == "RESET":
            sock.sendall(BLOCK)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def upstream() -> Iterator[int]:
    server = _Server((LOOPBACK, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def connect(port: int, command: str) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(command.encode() + b"\n")
    return sock


def recv_all(sock: socket.socket) -> int:
    total = 0
    while data := sock.recv(MiB):
        total += len(data)
    return total


def ping_rtts(port: int, count: int = 10) -> tuple[float, list[float]]:
    """(connect + first byte, then `count` round trips on the open connection), in seconds."""
    start = time.perf_counter()
    sock = connect(port, "PING")
    sock.sendall(b"x")
    sock.recv(1)
    first = time.perf_counter() - start
    rtts = []
    for _ in range(count):
        t = time.perf_counter()
        sock.sendall(b"x")
        sock.recv(1)
        rtts.append(time.perf_counter() - t)
    sock.close()
    return first, rtts


def download(port: int, nbytes: int) -> float:
    """MB/s of one connection receiving ``nbytes`` (timed from the first byte)."""
    sock = connect(port, f"SEND {nbytes}")
    first = len(sock.recv(MiB))
    start = time.perf_counter()
    rest = recv_all(sock)
    wall = time.perf_counter() - start
    sock.close()
    assert first + rest == nbytes, (first + rest, nbytes)
    return rest / 1e6 / wall


def upload(port: int, nbytes: int) -> float:
    """MB/s of one connection sending ``nbytes`` (timed until the server counted them all)."""
    sock = connect(port, "SINK")
    start = time.perf_counter()
    left = nbytes
    while left > 0:
        left -= sock.send(BLOCK[: min(left, len(BLOCK))])
    sock.shutdown(socket.SHUT_WR)  # the half-close must reach the server for it to answer
    answer = sock.recv(100)
    wall = time.perf_counter() - start
    sock.close()
    assert int(answer) == nbytes, (answer, nbytes)
    return nbytes / 1e6 / wall


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name:<44} {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--rate-mbps", type=float, default=50.0)
    parser.add_argument("--mib", type=int, default=32, help="MiB per capped transfer")
    parser.add_argument("--ceiling-mib", type=int, default=512, help="MiB per uncapped transfer (0: skip)")
    args = parser.parse_args(argv)
    d, r, n = args.delay_ms / 1000, args.rate_mbps, args.mib * MiB
    c = Checks()
    with upstream() as port:
        with WanProxyProcess((LOOPBACK, port), args.delay_ms, r) as proxy:
            first, rtts = ping_rtts(proxy.port)
            rtt = statistics.median(rtts)
            c.check(
                "round trip on an open connection ≈ 2×D",
                2 * d <= rtt < 2 * d * 1.25 + 0.003,
                f"{rtt * 1e3:.1f} ms (2×D = {2 * d * 1e3:.0f} ms)",
            )
            c.check(
                "connect + first byte ≈ 4×D (handshake)",
                4 * d <= first < 4 * d * 1.25 + 0.005,
                f"{first * 1e3:.1f} ms (4×D = {4 * d * 1e3:.0f} ms)",
            )
            down = download(proxy.port, n)
            c.check(
                "one connection, download ≈ R", 0.85 * r <= down <= 1.05 * r, f"{down:.1f} MB/s (R = {r:g})"
            )
            up = upload(proxy.port, n)
            # Timed to the server's answer, so it includes 2×D and the queue's drain: allow more.
            c.check("one connection, upload ≈ R", 0.8 * r <= up <= 1.05 * r, f"{up:.1f} MB/s (R = {r:g})")
            with ThreadPoolExecutor(2) as pool:
                both = list(pool.map(lambda _: download(proxy.port, n), range(2)))
            c.check(
                "two connections get R each",
                all(0.85 * r <= x <= 1.05 * r for x in both),
                " + ".join(f"{x:.1f}" for x in both) + " MB/s",
            )
            time.sleep(4 * d + 0.2)  # the clients' closes take D to reach the server
            stats = proxy.stats()
            c.check("process proxy counters", stats["active"] == 0 and stats["errors"] == 0, str(stats))

        with WanProxyProcess((LOOPBACK, port), args.delay_ms, None) as proxy:
            fast = download(proxy.port, 4 * n)
            # A pipe that waited D per chunk would carry 256 KiB per 2×D (13 MB/s at 10 ms).
            c.check("delay alone does not limit throughput", fast > 4 * r, f"{fast:,.0f} MB/s (no cap)")

        with WanProxy((LOOPBACK, port), args.delay_ms, r) as proxy:
            sock = connect(proxy.port, "ECHO")
            payload = BLOCK * 4
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while data := sock.recv(MiB):
                got += data
            sock.close()
            c.check("half-close: echo until EOF arrives whole", got == payload, f"{len(got)} bytes back")
            sock = connect(proxy.port, "RESET")
            start = time.perf_counter()
            with contextlib.suppress(ConnectionResetError):
                recv_all(sock)
            sock.close()
            c.check(
                "upstream reset closes the client promptly",
                time.perf_counter() - start < 1.0,
                f"{(time.perf_counter() - start) * 1e3:.0f} ms",
            )
            time.sleep(0.2)
            stats = proxy.link.stats()
            c.check("no connection left after reset", stats["active"] == 0, str(stats))
        c.check("no task left at stop", proxy.leftover_tasks == 0, f"{proxy.leftover_tasks} tasks")
        c.check("proxy thread ended", not proxy._thread.is_alive(), "")

    dead = socket.socket()
    dead.bind((LOOPBACK, 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    with WanProxy((LOOPBACK, dead_port), args.delay_ms, r) as proxy:
        start = time.perf_counter()
        sock = socket.create_connection((LOOPBACK, proxy.port), timeout=10)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        sock.close()
        c.check(
            "refused upstream closes the client",
            closed and time.perf_counter() - start < 1.0,
            f"{(time.perf_counter() - start) * 1e3:.0f} ms, {proxy.link.stats()}",
        )
    c.check("no task left at stop (refused)", proxy.leftover_tasks == 0, f"{proxy.leftover_tasks} tasks")

    if args.ceiling_mib:
        size = args.ceiling_mib * MiB
        with upstream() as port, WanProxyProcess((LOOPBACK, port), 0, None) as proxy:
            direct = download(port, size)
            one = download(proxy.port, size)
            with ThreadPoolExecutor(4) as pool:
                start = time.perf_counter()
                list(pool.map(lambda _: download(proxy.port, size // 4), range(4)))
                four = size / 1e6 / (time.perf_counter() - start)
            one_up = upload(proxy.port, size)
            cpu = proxy.stats()["cpu_s"]
        print(
            f"ceiling (no delay, no cap, {args.ceiling_mib} MiB): direct {direct:,.0f} MB/s; "
            f"through the proxy: 1 connection down {one:,.0f} MB/s, up {one_up:,.0f} MB/s, "
            f"4 connections down {four:,.0f} MB/s; proxy CPU {cpu:.1f} s"
        )
    print("all checks passed" if not c.failed else f"{c.failed} check(s) FAILED")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
