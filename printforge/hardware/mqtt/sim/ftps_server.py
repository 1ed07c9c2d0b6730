"""A minimal implicit-FTPS server: just enough of RFC 959 for a printer's file upload.

Without a TLS context it serves plain FTP: a mock farm started from the command line has no
certificate to present.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

__all__ = ["FtpsServer"]

log = logging.getLogger(__name__)


class FtpsServer:
    """Accepts USER/PASS, PBSZ/PROT, TYPE, PASV/EPSV, STOR, SIZE, QUIT; files go to `on_file`."""

    def __init__(
        self,
        context: ssl.SSLContext | None,
        *,
        user: str,
        password: str,
        on_file: Callable[[str, bytes], None],
    ) -> None:
        self.context = context
        self.user = user
        self.password = password
        self.on_file = on_file
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._sessions):
            task.cancel()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        data_server: asyncio.Server | None = None
        data_conn: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        user: str | None = None
        authed = False

        async def reply(text: str) -> None:
            writer.write(f"{text}\r\n".encode())
            await writer.drain()

        try:
            await reply("220 printer ready")
            while line := await reader.readline():
                verb, _, arg = line.decode(errors="replace").strip().partition(" ")
                verb = verb.upper()
                if verb == "USER":
                    user = arg
                    await reply("331 password please")
                elif verb == "PASS":
                    authed = user == self.user and arg == self.password
                    await reply("230 logged in" if authed else "530 login incorrect")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                elif not authed:
                    await reply("530 log in first")
                elif verb in ("PBSZ", "PROT", "TYPE", "CWD", "NOOP", "OPTS"):
                    await reply("200 ok")
                elif verb in ("PASV", "EPSV"):
                    if data_server is not None:
                        data_server.close()

                    async def on_data(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                        await data_conn.put((r, w))

                    data_server = await asyncio.start_server(
                        on_data, "127.0.0.1", 0, ssl=self.context
                    )
                    port = data_server.sockets[0].getsockname()[1]
                    if verb == "EPSV":
                        await reply(f"229 Entering Extended Passive Mode (|||{port}|)")
                    else:
                        await reply(
                            f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})"
                        )
                elif verb == "STOR":
                    await reply("150 opening data connection")
                    r, w = await asyncio.wait_for(data_conn.get(), 30)
                    body = await _read_to_end(r)
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
                    self.on_file(arg.lstrip("/"), body)
                    await reply("226 transfer complete")
                else:
                    await reply(f"502 {verb} not implemented")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as err:
            log.debug("ftps session ended: %s", err)
        finally:
            if data_server is not None:
                data_server.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._sessions.discard(task)


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the client sends on a data connection.

    Clients end an upload by closing the socket, some without TLS's close_notify first
    (bambulabs-api and pybambu skip `unwrap()`: a printer's server would otherwise keep them
    waiting); the printers take that as the end of the file, and so does this server.
    """
    chunks: list[bytes] = []
    while True:
        try:
            chunk = await reader.read(64 * 1024)
        except (ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
