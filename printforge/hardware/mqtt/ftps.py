"""Implicit FTPS upload (port 990), how Bambu Lab printers take files in LAN mode.

ftplib speaks explicit FTPS only; implicit FTPS wraps the control socket in TLS before the
greeting, which the subclass below adds. The data channel reuses the control channel's TLS
session, which the printers' servers insist on. Without a context the upload is plain FTP, which
only a simulator with no certificate to serve speaks.
"""

from __future__ import annotations

import ftplib
import io
import socket
import ssl
from pathlib import Path
from typing import Any

__all__ = ["upload_file"]


class _ImplicitFTPS(ftplib.FTP_TLS):
    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(
                conn,
                server_hostname=self.host,
                session=self.sock.session,  # type: ignore[union-attr]
            )
        return conn, size


def upload_file(
    source: Path | bytes,
    remote_name: str,
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    context: ssl.SSLContext | None,
    timeout_s: float = 60.0,
) -> None:
    """Store `source` (a file, or bytes made in memory) as `remote_name`.

    Blocking: run it in a thread. Raises ftplib/ssl/OS errors for the caller to translate.
    """
    ftp: ftplib.FTP
    if context is None:
        ftp = ftplib.FTP(timeout=timeout_s)
    else:
        ftp = _ImplicitFTPS(context=context, timeout=timeout_s)
    try:
        ftp.connect(host, port)
        ftp.login(user, password)
        if isinstance(ftp, _ImplicitFTPS):
            ftp.prot_p()
        with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as f:
            ftp.storbinary(f"STOR {remote_name}", f, blocksize=64 * 1024)
        ftp.quit()
    finally:
        ftp.close()
