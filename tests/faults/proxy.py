"""A TCP proxy the test controls, between the service and PostgreSQL: `cut()` closes the listening
socket and every open connection (a real network fault: the service's next connect is refused),
`restore()` listens again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int | None):
        # A host starting with "/" is a Unix socket directory (the embedded server).
        self.target_host, self.target_port = target_host, target_port or 5432
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self.connections = 0
        # Called with every chunk the service sends to PostgreSQL (SQL text is visible in it).
        self.on_client_bytes: Callable[[bytes], None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _open_target(self):
        if self.target_host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self.target_host}/.s.PGSQL.{self.target_port}")
        return await asyncio.open_connection(self.target_host, self.target_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._pipe_both(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await self._open_target()
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch) -> None:
            try:
                while data := await src.read(65536):
                    if watch is not None:
                        watch(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, self._watch), pipe(up_reader, writer, None))
        self._writers -= {writer, up_writer}

    def _watch(self, data: bytes) -> None:
        if self.on_client_bytes is not None:
            self.on_client_bytes(data)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()  # no new connections: the next connect is refused
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()  # RST, not a polite close: like a dead server or network
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
