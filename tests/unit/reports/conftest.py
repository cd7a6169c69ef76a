"""Fixtures for the report tests: a real TCP listener that records connections, and PDF inspection via poppler."""

from __future__ import annotations

import re
import select
import shutil
import socket
import subprocess
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Listener:
    """A listening socket on 127.0.0.1 that accepts and records every connection made to it."""

    port: int
    _sock: socket.socket
    connections: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _accept_ready(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            return False
        conn, address = self._sock.accept()
        self.connections.append(address)
        conn.close()
        return True

    def serve(self) -> None:
        while not self._stop.is_set():
            self._accept_ready(0.02)

    def count(self) -> int:
        """Connections so far, after accepting any still waiting in the backlog."""
        while self._accept_ready(0.05):
            pass
        return len(self.connections)


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    """A real TCP listener on a free 127.0.0.1 port; hostile HTML points its URLs here.

    Tests using it must be marked ``sockets``: the quick-tier socket guard raises inside WeasyPrint, which logs and
    swallows the error, so under the guard a real fetch attempt would never reach the listener and go unnoticed.
    """
    if request.node.get_closest_marker("sockets") is None:
        pytest.fail("a test using the listener must be marked @pytest.mark.sockets so fetch attempts reach it")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)
    recorder = Listener(sock.getsockname()[1], sock)
    thread = threading.Thread(target=recorder.serve, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder._stop.set()
        thread.join(timeout=2)
        sock.close()


class PdfInspector:
    """Reads a PDF the way a person or a tool would: text layer, attachments, decompressed streams."""

    def __init__(self, workdir: Path) -> None:
        for tool in ("pdftotext", "pdfdetach", "pdfinfo"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: install poppler-utils")
        self.workdir = workdir
        self._n = 0

    def _write(self, pdf: bytes) -> Path:
        self._n += 1
        path = self.workdir / f"doc{self._n}.pdf"
        path.write_bytes(pdf)
        return path

    def text(self, pdf: bytes, *, layout: bool = True) -> str:
        args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(self._write(pdf)), "-"]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout

    def attachments(self, pdf: bytes) -> int:
        out = subprocess.run(
            ["pdfdetach", "-list", str(self._write(pdf))], check=True, capture_output=True, text=True
        ).stdout
        match = re.match(r"(\d+) embedded files?", out.strip())
        assert match, out
        return int(match.group(1))

    def pages(self, pdf: bytes) -> int:
        out = subprocess.run(["pdfinfo", str(self._write(pdf))], check=True, capture_output=True, text=True).stdout
        match = re.search(r"^Pages:\s+(\d+)", out, re.M)
        assert match, out
        return int(match.group(1))

    @staticmethod
    def all_bytes(pdf: bytes) -> bytes:
        """The raw file plus every stream that inflates, so compressed content is searched too."""
        parts = [pdf]
        for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
            try:
                parts.append(zlib.decompress(match.group(1)))
            except zlib.error:
                continue
        return b"\n".join(parts)


@pytest.fixture
def pdf_inspector(tmp_path: Path) -> PdfInspector:
    """Poppler-based PDF inspection writing its files under tmp_path."""
    return PdfInspector(tmp_path)
