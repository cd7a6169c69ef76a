"""A real SMTP server (aiosmtpd) that can take a message and hold back its "250 OK".

This is the moment a crash makes a duplicate: the server has the message, the sender has no answer yet. Used by the
fault test of a worker killed mid-send and by `make bench-faults`. Plain Python (no pytest), so the benchmark can
import it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HeldReplySmtp:
    """Keeps every message it receives; while holding, a received message's reply waits until release()."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.messages: list[Message] = []
        self.held: list[Message] = []  # received while holding: their 250 was (or is being) held back
        self._lock = threading.Lock()
        self._holding = threading.Event()
        self._controller = Controller(self, hostname=self.host, port=self.port)

    def start(self) -> HeldReplySmtp:
        """Start serving on self.port."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Release anything held and stop serving."""
        self.release()
        self._controller.stop()

    def hold(self) -> None:
        """From now on, take messages but hold their replies (until release)."""
        self._holding.set()

    def release(self) -> None:
        """Answer held messages (to whoever is still listening) and every later one at once."""
        self._holding.clear()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        with self._lock:
            self.messages.append(message)
            if self._holding.is_set():
                self.held.append(message)
        while self._holding.is_set():
            await asyncio.sleep(0.05)
        return "250 OK"

    def by_id(self, message_id: str) -> list[Message]:
        """Messages received with this Message-ID, in arrival order."""
        with self._lock:
            return [m for m in self.messages if m["Message-ID"] == message_id]

    def copies(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self._lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)

    def wait_held(self, timeout: float) -> Message | None:
        """The first message whose reply is held, once one arrives (None after timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.held:
                    return self.held[0]
            time.sleep(0.05)
        return None
