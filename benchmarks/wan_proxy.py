"""A TCP proxy on 127.0.0.1 that turns loopback into a WAN link (stdlib only).

Every byte is forwarded to ``--upstream HOST:PORT`` with, in each direction:

* a one-way delay of D ms (``--delay-ms``). Each chunk read gets a release time and
  waits in a queue until then, so the pipe keeps flowing: a link of D ms carries as much
  as one without delay (a request/response round trip costs 2×D);
* a bandwidth cap of R MB/s per TCP connection (``--rate-mbps``, megabytes of 10^6
  bytes per second). Chunks are paced like a serial link: each one finishes
  "transmitting" len/R seconds after the previous one did, then propagates for D;
* a TCP handshake (``--handshake-rtts``, default 1): the client's first bytes leave
  one round trip (2×D) after it connected, as after SYN / SYN-ACK. TLS would add 1–2 more.

What it does not emulate: loss, TCP slow start and window limits (the proxy ends TCP on
both sides and buffers up to ``--buffer-kib`` per direction, at least 2 × R × D, so a
connection reaches R immediately), or a cap shared by all connections.

Command line (prints ``{"host": "127.0.0.1", "port": P, ...}`` as one JSON line; stops on
SIGTERM/SIGINT, or when stdin closes with ``--stop-on-stdin-eof``; SIGUSR1 prints the
counters as one JSON line)::

    python benchmarks/wan_proxy.py --listen 0 --upstream 127.0.0.1:8333 --delay-ms 10 --rate-mbps 50

From Python, in a background thread (:class:`WanProxy`) or, so that the proxy's CPU does
not share the GIL with the client being measured, in a child process
(:class:`WanProxyProcess`), both context managers with ``.port`` and ``.url``::

    with WanProxyProcess(upstream=("127.0.0.1", port), delay_ms=10, rate_mb_s=50) as proxy:
        boto3.client("s3", endpoint_url=proxy.url, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from typing import Any

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024


class _Direction:
    """Bytes one socket received, queued until their release time, then written to the other."""

    def __init__(self, conn: _Conn, free_at: float) -> None:
        self.conn, self.link = conn, conn.link
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.src: asyncio.Transport | None = None  # read from (paused while the queue is full)
        self.dst: asyncio.Transport | None = None  # written to (None until the upstream answers)
        self.buffered = 0
        self.free_at = free_at  # when the emulated wire has sent everything queued so far
        self.src_paused = self.blocked = self.done = False
        self.timer: asyncio.TimerHandle | None = None

    def push(self, data: bytes) -> None:
        """Queue a chunk (``b""``: EOF, which travels like data, after the bytes before it)."""
        start = max(self.link.loop.time(), self.free_at)
        self.free_at = start + (len(data) / self.link.rate if self.link.rate else 0.0)
        self.queue.append((self.free_at + self.link.delay, data))
        self.buffered += len(data)
        self.link.bytes += len(data)
        if self.buffered >= self.link.buffer and self.src is not None and not self.src_paused:
            self.src_paused = True
            self.src.pause_reading()
        self.schedule()

    def schedule(self) -> None:
        if self.timer is None and self.queue and not self.blocked and self.dst is not None:
            self.timer = self.link.loop.call_at(self.queue[0][0], self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.link.loop.time()
        while self.queue and self.queue[0][0] <= now and not self.blocked:
            data = self.queue.popleft()[1]
            if not data:
                if self.dst.can_write_eof():  # type: ignore[union-attr]
                    self.dst.write_eof()  # type: ignore[union-attr]
                self.done = True
                return self.conn.direction_done()
            self.dst.write(data)  # type: ignore[union-attr]  # may call pause_writing: blocked
            self.buffered -= len(data)
        if self.src_paused and self.buffered < self.link.buffer:
            self.src_paused = False
            self.src.resume_reading()  # type: ignore[union-attr]
        self.schedule()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: what it receives goes into ``inbound``."""

    def __init__(self, conn: _Conn, inbound: _Direction, outbound: _Direction) -> None:
        self.conn, self.inbound, self.outbound = conn, inbound, outbound

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inbound.src = self.outbound.dst = transport  # type: ignore[assignment]
        self.conn.transports.append(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.inbound.push(data)

    def eof_received(self) -> bool:
        self.inbound.push(b"")
        return True  # half-closed: keep sending the other way

    def pause_writing(self) -> None:
        self.outbound.blocked = True

    def resume_writing(self) -> None:
        self.outbound.blocked = False
        self.outbound.schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close(abort=True, error=exc is not None)


class _Client(_Side):
    """The accepted socket: holds its reads until the upstream connection is made."""

    def __init__(self, link: Link) -> None:
        conn = _Conn(link)
        super().__init__(conn, conn.up, conn.down)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.conn.connecting = self.conn.link.loop.create_task(self.conn.connect(transport))


class _Conn:
    def __init__(self, link: Link) -> None:
        self.link = link
        now = link.loop.time()
        self.up = _Direction(self, now + link.handshake)  # client -> upstream, after SYN/SYN-ACK
        self.down = _Direction(self, now)  # upstream -> client
        self.transports: list[asyncio.Transport] = []
        self.connecting: asyncio.Task[None] | None = None
        self.closed = False
        link.conns.add(self)
        link.connections += 1

    async def connect(self, client: asyncio.BaseTransport) -> None:
        try:
            upstream, _ = await self.link.loop.create_connection(
                lambda: _Side(self, self.down, self.up), *self.link.upstream
            )
        except OSError:
            return self.close(abort=True, error=True)  # refused: the client sees a reset
        if self.closed:  # the client left meanwhile
            upstream.abort()
            return None
        client.resume_reading()  # type: ignore[attr-defined]
        self.up.schedule()
        return None

    def direction_done(self) -> None:
        if self.up.done and self.down.done:  # both sides sent EOF: a clean close
            self.close(abort=False, error=False)

    def close(self, abort: bool, error: bool) -> None:
        """Close both sockets; a reset or an error on one side resets the other (``abort``)."""
        if self.closed:
            return
        self.closed = True
        self.link.errors += error
        self.link.conns.discard(self)
        for direction in (self.up, self.down):
            direction.cancel()
        for transport in self.transports:
            if abort:
                transport.abort()
            else:
                transport.close()


class Link:
    """The proxy itself: one asyncio server on 127.0.0.1, any number of emulated connections."""

    def __init__(
        self,
        upstream: tuple[str, int],
        delay_ms: float = 0.0,
        rate_mb_s: float | None = None,
        *,
        handshake_rtts: int = 1,
        buffer_kib: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.delay = delay_ms / 1000
        self.rate = rate_mb_s * 1e6 if rate_mb_s else None
        self.handshake = handshake_rtts * 2 * self.delay
        bdp = 2 * self.rate * self.delay if self.rate else 16 * 1024 * 1024
        self.buffer = buffer_kib * 1024 if buffer_kib else max(1024 * 1024, int(bdp))
        self.conns: set[_Conn] = set()
        self.connections = self.bytes = self.errors = 0
        self.server: asyncio.Server | None = None
        self.loop: Any = None  # the running loop, from start()

    async def start(self, port: int = 0) -> int:
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(lambda: _Client(self), LOOPBACK, port)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        tasks = [c.connecting for c in self.conns if c.connecting is not None]
        for conn in list(self.conns):
            conn.close(abort=True, error=False)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        await asyncio.sleep(0)  # let the aborted transports close their sockets

    def stats(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "active": len(self.conns),
            "bytes": self.bytes,
            "errors": self.errors,
        }


class WanProxy:
    """:class:`Link` in a background thread of this process, as a context manager."""

    def __init__(
        self, upstream: tuple[str, int], delay_ms: float = 0.0, rate_mb_s: float | None = None, **kw: Any
    ):
        self.link = Link(upstream, delay_ms, rate_mb_s, **kw)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="wan-proxy", daemon=True
        )
        self.leftover_tasks = -1  # tasks still alive when the loop ended (0 after a clean stop)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            self.port = await self.link.start()
        finally:
            self._started.set()
        await self._stop.wait()
        await self.link.stop()
        self.leftover_tasks = len(asyncio.all_tasks()) - 1

    def start(self) -> WanProxy:
        self._thread.start()
        self._started.wait(10)
        if not self.port:
            raise RuntimeError("the WAN proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> WanProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WanProxyProcess:
    """This file run as a child process (stopped by its PID, or when our end of its stdin closes)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        delay_ms: float = 0.0,
        rate_mb_s: float | None = None,
        *,
        handshake_rtts: int = 1,
        buffer_kib: int | None = None,
    ) -> None:
        self.argv = [sys.executable, os.path.abspath(__file__), "--listen", "0", "--stop-on-stdin-eof"]
        self.argv += ["--upstream", f"{upstream[0]}:{upstream[1]}", "--delay-ms", str(delay_ms)]
        self.argv += ["--rate-mbps", str(rate_mb_s or 0), "--handshake-rtts", str(handshake_rtts)]
        if buffer_kib:
            self.argv += ["--buffer-kib", str(buffer_kib)]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> WanProxyProcess:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._line(10.0)
        if not line:
            self.stop()
            raise RuntimeError("the WAN proxy process did not start")
        self.port = json.loads(line)["port"]
        return self

    def _line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else ""

    def stats(self) -> dict[str, Any]:
        """The proxy's counters (connections, active, bytes, errors) and its CPU seconds so far."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        data = json.loads(self._line(10.0))
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        data["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return data

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> WanProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _serve(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    link = Link(
        (host or LOOPBACK, int(port)),
        args.delay_ms,
        args.rate_mbps or None,
        handshake_rtts=args.handshake_rtts,
        buffer_kib=args.buffer_kib,
    )
    bound = await link.start(args.listen)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps(link.stats()), flush=True))
    if args.stop_on_stdin_eof:
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
        ).start()
    info = {
        "host": LOOPBACK,
        "port": bound,
        "upstream": args.upstream,
        "delay_ms": args.delay_ms,
        "rate_mb_s": args.rate_mbps or None,
        "buffer_bytes": link.buffer,
        "pid": os.getpid(),
    }
    print(json.dumps(info), flush=True)
    await stop.wait()
    await link.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay, each direction")
    parser.add_argument(
        "--rate-mbps", type=float, default=0.0, help="MB/s per connection and direction (0: none)"
    )
    parser.add_argument(
        "--handshake-rtts", type=int, default=1, help="round trips before a new connection's data"
    )
    parser.add_argument("--buffer-kib", type=int, default=None, help="queue per direction (default ≥ 2×R×D)")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    if args.upstream.rpartition(":")[0] not in ("", LOOPBACK, "localhost"):
        parser.error("the upstream must be on 127.0.0.1")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
