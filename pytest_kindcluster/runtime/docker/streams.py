"""The byte streams of ``docker exec``: stdin written while the multiplexed output is read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docker.utils.socket import frames_iter

from pytest_kindcluster.errors import EngineError

CHUNK = 1 << 20


def pump(sock: Any, stdin: bytes | Path | None, *, timeout: float) -> tuple[bytes, bytes]:
    """Write stdin while reading the multiplexed output, so neither side can block the other.

    ``timeout`` is the longest silence tolerated from the command before it counts as hung.
    """
    raw: socket.socket = getattr(sock, "_sock", sock)
    raw.settimeout(timeout)
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    failure: list[BaseException] = []

    def read() -> None:
        try:
            # frames_iter is untyped in types-docker; it yields (stream id, bytes) pairs.
            for stream, data in frames_iter(sock, tty=False):  # type: ignore[no-untyped-call]
                chunks.setdefault(stream, []).append(data)
        except OSError as exc:  # a read timeout: the command stayed silent too long
            failure.append(exc)
        except ValueError:
            # The socket was closed under the read: the caller was interrupted (Ctrl-C) and
            # has stopped waiting for this output.
            return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if stdin is not None:
            for block in _blocks(stdin):
                raw.sendall(block)
            raw.shutdown(socket.SHUT_WR)  # EOF for the command's stdin
        reader.join()
    finally:
        sock.close()
    stdout, stderr = b"".join(chunks[1]), b"".join(chunks[2])
    if failure:
        raise EngineError(
            "read a command's output",
            f"silent for {timeout:.0f}s ({failure[0]}); so far:\n"
            + (stdout + stderr).decode(errors="replace"),
        ) from failure[0]
    return stdout, stderr


def _blocks(stdin: bytes | Path) -> Iterator[bytes]:
    if isinstance(stdin, bytes):
        for start in range(0, len(stdin), CHUNK):
            yield stdin[start : start + CHUNK]
        return
    with stdin.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block
