"""A minimal HTTP/1.1 keep-alive client for the benchmarks (loopback, GET and JSON POST)."""

from __future__ import annotations

import asyncio


class Connection:
    """One HTTP/1.1 keep-alive connection written by hand. A general client (httpx) spends
    more CPU per request than the server does; on 2 shared cores it measured itself."""

    def __init__(self, port: int, headers: str = "") -> None:
        self.port = port
        self.head = f"Host: 127.0.0.1\r\n{headers}\r\n"  # headers: "Name: value\r\n" lines
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> int:
        return await self.send(f"GET {target} HTTP/1.1\r\n{self.head}".encode())

    async def post_json(self, target: str, body: bytes) -> int:
        head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{self.head}"
        return await self.send(f"POST {target} HTTP/1.1\r\n{head}".encode() + body)

    async def send(self, request: bytes) -> int:
        """Write one whole request, read its answer; the status."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
            self.writer.write(request)
            await self.writer.drain()
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection")
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and b"close" in value.lower():
                    close = True
            await self.reader.readexactly(length)
            if close:
                self.close()
            return int(status_line.split()[1])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise ConnectionError("the connection failed") from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
