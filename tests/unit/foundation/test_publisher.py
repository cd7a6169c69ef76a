"""The after-commit publisher: order kept, batch-task messages merged only when they have piled up."""

from __future__ import annotations

import threading

import pytest

from workers import enqueue
from workers.enqueue import BATCH_IDS, _Publisher, coalesce


def test_coalesce_merges_only_batch_tasks_in_order_and_caps_the_size() -> None:
    items = [
        ("alerts.evaluate_batch", (1, 2, 3)),
        ("notifications.send", (7,)),
        ("alerts.evaluate_batch", (4,)),
        ("alerts.evaluate", (9,)),
        ("alerts.evaluate_batch", (5, 6)),
    ]
    assert coalesce(items) == [
        ("alerts.evaluate_batch", (1, 2, 3, 4, 5, 6)),
        ("notifications.send", (7,)),
        ("alerts.evaluate", (9,)),
    ]
    many = [("alerts.evaluate_batch", (i, i + 1000, i + 2000)) for i in range(10)]
    merged = coalesce(many)
    assert [len(args) for _, args in merged] == [BATCH_IDS, BATCH_IDS, 30 - 2 * BATCH_IDS]
    assert [i for _, args in merged for i in args] == [i for _, args in many for i in args]
    assert coalesce([]) == []


def test_the_publisher_sends_one_message_per_item_when_quiet_and_merges_a_backlog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, tuple[int, ...]]] = []
    gate = threading.Event()

    def slow_broker(task_name: str, args: tuple[int, ...]) -> None:
        gate.wait(5)  # the first publish blocks until the backlog below has piled up
        sent.append((task_name, args))

    monkeypatch.setattr(enqueue, "_publish_now", slow_broker)
    publisher = _Publisher()
    publisher.submit("alerts.evaluate_batch", (1, 2))
    # While the broker is slow, submissions keep arriving.
    for n in range(3, 8):
        publisher.submit("alerts.evaluate_batch", (n,))
    publisher.submit("notifications.send", (99,))
    gate.set()
    assert publisher.flush(5)
    ids = [i for name, args in sent if name == "alerts.evaluate_batch" for i in args]
    assert ids == [1, 2, 3, 4, 5, 6, 7]  # nothing lost, nothing twice, in order
    assert ("notifications.send", (99,)) in sent
    assert len(sent) < 7  # the backlog went out in fewer messages than it came in
    # Quiet again: one message per submission.
    sent.clear()
    publisher.submit("alerts.evaluate_batch", (8, 9))
    assert publisher.flush(5)
    publisher.submit("alerts.evaluate_batch", (10,))
    assert publisher.flush(5)
    assert sent == [("alerts.evaluate_batch", (8, 9)), ("alerts.evaluate_batch", (10,))]
