"""A TCP proxy in front of the shared PostgreSQL, for outage tests (the server is never
restarted: the proxy plays the outage).

* ``cut()``: every connection closed, new ones accepted and closed at once (the database
  is down);
* ``blackhole()``: connections stay open but no byte goes through either way, new ones
  included (a partition behind something that still accepts TCP);
* ``restore()``: forwarding again; connections held by a blackhole are closed, as TCP
  timeouts end them in a real partition;
* ``drop_after_commit(marker)``: on the first connection whose transaction ran a statement
  containing ``marker``, forward its ``COMMIT`` and close the connection before the server's
  answer reaches the client (a commit whose acknowledgement was lost).

The client must not negotiate TLS (``sslmode=disable``) for the last one: it reads the
protocol's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: SSLRequest and GSSENCRequest codes: untyped messages before the startup message.
_NEGOTIATION = (80877103, 80877104)


class _Link:
    """One client connection and its upstream."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.held = False  # blackholed: nothing is forwarded any more
        self.dropped = False  # killed after a COMMIT: the server's answer is not forwarded
        self.saw_marker = False
        self.buffer = b""
        self.started = False  # past the startup message: messages are typed

    def close(self) -> None:
        for w in (self.client, self.server):
            if w is not None:
                with contextlib.suppress(Exception):
                    w.transport.abort()


class PgProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.mode = "open"  # open | cut | blackhole
        self.port = 0
        self._links: set[_Link] = set()
        self._marker: bytes | None = None
        self.commit_dropped = threading.Event()
        #: Connections refused while cut.
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-proxy",
                                        daemon=True)

    # -- control, from the test's thread --------------------------------------------------

    def start(self) -> PgProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at the proxy, without TLS."""
        parts = urlsplit(database_url)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("sslmode", "host",
                                                                          "port")]
        query += [("sslmode", "disable"), ("gssencmode", "disable")]
        return urlunsplit((parts.scheme, f"{user}127.0.0.1:{self.port}", parts.path,
                           urlencode(query), ""))

    def cut(self) -> None:
        self._call(self._set_mode("cut"))

    def blackhole(self) -> None:
        self._call(self._set_mode("blackhole"))

    def restore(self) -> None:
        self._call(self._set_mode("open"))

    def drop_after_commit(self, marker: bytes) -> None:
        self._marker = marker

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                link.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _set_mode(self, mode: str) -> None:
        previous, self.mode = self.mode, mode
        for link in list(self._links):
            if mode == "cut" or (mode == "open" and previous == "blackhole" and link.held):
                link.close()
                self._links.discard(link)
            elif mode == "blackhole":
                link.held = True

    # -- forwarding, on the proxy's loop ---------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        if self.mode == "cut":
            self.refused += 1
            link.close()
            return
        self._links.add(link)
        if self.mode == "blackhole":
            link.held = True
            await self._discard(reader)
            return
        try:
            up_reader, link.server = await asyncio.open_connection(*self.upstream)
        except OSError:
            link.close()
            self._links.discard(link)
            return
        await asyncio.gather(self._to_server(link, reader), self._to_client(link, up_reader),
                             return_exceptions=True)
        link.close()
        self._links.discard(link)

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass

    async def _to_server(self, link: _Link, reader: asyncio.StreamReader) -> None:
        assert link.server is not None
        while data := await reader.read(65536):
            if link.held or link.dropped:
                continue
            commit_end = self._scan(link, data)
            if commit_end is not None:
                link.dropped = True
                link.server.write(data[:commit_end])
                await link.server.drain()
                link.server.write_eof()  # the COMMIT arrives whole, then the end
                link.client.transport.abort()
                self.commit_dropped.set()
                return
            link.server.write(data)
            await link.server.drain()
        link.close()

    async def _to_client(self, link: _Link, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            if link.held or link.dropped:
                continue
            link.client.write(data)
            await link.client.drain()
        link.close()

    def _scan(self, link: _Link, data: bytes) -> int | None:
        """Read the client's messages in ``data`` (every connection's, from its start); the
        offset just past a ``COMMIT`` that ends a transaction which ran the armed marker."""
        armed = self._marker is not None and not self.commit_dropped.is_set()
        offset_of_buffer = len(link.buffer)
        link.buffer += data
        pos = 0
        for kind, body, end in _messages(link):
            if armed and kind == b"P" and self._marker is not None and self._marker in body:
                link.saw_marker = True
            elif (armed and link.saw_marker and kind == b"Q"
                  and body.rstrip(b"\0").strip().upper() == b"COMMIT"):
                return end - offset_of_buffer
            pos = end
        link.buffer = link.buffer[pos:]
        return None


def _messages(link: _Link) -> Iterator[tuple[bytes, bytes, int]]:
    """(type, body, end offset in the buffer) of each complete message in ``link.buffer``."""
    buf, pos = link.buffer, 0
    while True:
        if not link.started:
            if len(buf) - pos < 8:
                return
            length, code = struct.unpack("!II", buf[pos:pos + 8])
            if len(buf) - pos < length:
                return
            pos += length
            if code not in _NEGOTIATION:
                link.started = True
            yield b"", b"", pos
            continue
        if len(buf) - pos < 5:
            return
        kind = buf[pos:pos + 1]
        (length,) = struct.unpack("!I", buf[pos + 1:pos + 5])
        if len(buf) - pos < 1 + length:
            return
        body = buf[pos + 5:pos + 1 + length]
        pos += 1 + length
        yield kind, body, pos
