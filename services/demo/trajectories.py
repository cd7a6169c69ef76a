"""Synthetic score trajectories for the demo practice: outcome courses and alliance series with ruptures."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# Course types and how common they are (roughly the shape of routine-outcome data in talking therapies).
COURSES: list[tuple[str, float]] = [
    ("improver", 0.48),
    ("slow_responder", 0.20),
    ("no_change", 0.12),
    ("deteriorator", 0.08),
    ("drop_out", 0.12),
]
RISK_SHARE = 0.03  # clients who endorse the PHQ-9 risk item once; it opens a risk alert
RUPTURE_SHARE = 0.13  # about 10-15% of clients show a rupture pattern (Larsson et al. 2018: 10.7%)
REPAIR_SHARE = 0.75  # most ruptures that are noticed are repaired


@dataclass
class ClientCourse:
    """Everything the demo needs to know about one client's therapy."""

    course: str
    sessions: int
    phq9: list[int]
    gad7: list[int]
    alliance_items: list[list[int]]
    tension: list[int]
    planned: int = 0
    rupture_at: int | None = None
    repaired: bool | None = None
    # The session (0-based) in which the PHQ-9 risk item is endorsed, for the few clients where it is.
    risk_session: int | None = None
    goals: list[list[int]] = field(default_factory=list)


def _pick_course(rng: random.Random) -> str:
    roll, acc = rng.random(), 0.0
    for name, share in COURSES:
        acc += share
        if roll < acc:
            return name
    return COURSES[-1][0]


def _outcome_series(rng: random.Random, course: str, start: float, sessions: int, top: int) -> list[int]:
    series = []
    for t in range(sessions):
        progress = math.log(t + 1)
        if course == "improver":
            mean = start - progress * start * 0.28
        elif course == "slow_responder":
            mean = start - progress * start * 0.10
        elif course == "deteriorator":
            mean = start + progress * 3.2
        elif course == "no_change":
            mean = start
        else:  # drop-out: a little improvement, then they stop coming
            mean = start - progress * start * 0.12
        series.append(round(min(top, max(0, rng.gauss(mean, 1.8)))))
    return series


def _spread_total(rng: random.Random, total: int, n_items: int, top: int) -> list[int]:
    """Item answers (0..top each) that add up to total."""
    total = max(0, min(total, n_items * top))
    items = [0] * n_items
    for _ in range(total):
        candidates = [i for i in range(n_items) if items[i] < top]
        items[rng.choice(candidates)] += 1
    return items


def _balanced_items(rng: random.Random, total: int, n_items: int, top: int) -> list[int]:
    """Items near total / n_items with a little noise, adding up to total (how alliance items behave)."""
    total = max(0, min(total, n_items * top))
    items = [min(top, max(0, round(total / n_items + rng.gauss(0, 0.45)))) for _ in range(n_items)]
    while sum(items) != total:
        step = 1 if sum(items) < total else -1
        room = [i for i in range(n_items) if 0 <= items[i] + step <= top]
        items[rng.choice(room)] += step
    return items


def outcome_items(rng: random.Random, total: int, n_items: int) -> list[int]:
    """PHQ-9 / GAD-7 style answers (0-3 each) summing to total."""
    return _spread_total(rng, total, n_items, 3)


def _alliance_series(rng: random.Random, sessions: int) -> tuple[list[list[int]], list[int], int | None, bool | None]:
    mean = min(39.5, rng.gauss(36.5, 3.0))
    sd = max(0.3, abs(rng.gauss(1.5, 0.6)))
    totals = [rng.gauss(mean, sd) for _ in range(sessions)]
    rupture_at: int | None = None
    repaired: bool | None = None
    if sessions >= 5 and rng.random() < RUPTURE_SHARE:
        rupture_at = rng.randint(3, sessions - 2)  # 1-based session number of the dip
        depth = rng.uniform(7, 13)
        repaired = rng.random() < REPAIR_SHARE
        length = rng.randint(1, 2) if repaired else sessions - rupture_at + 1
        for t in range(rupture_at - 1, min(sessions, rupture_at - 1 + length)):
            totals[t] -= depth
    items, tension = [], []
    for t, total in enumerate(totals):
        clipped = round(min(40, max(0, total)))
        per_item = _balanced_items(rng, clipped, 4, 10)
        if rupture_at is not None and t == rupture_at - 1:
            # A rupture usually shows in one component first: move points away from it.
            weak = rng.randrange(4)
            moved = min(per_item[weak], 3)
            per_item[weak] -= moved
            for _ in range(moved):
                others = [i for i in range(4) if i != weak and per_item[i] < 10]
                if not others:
                    break
                per_item[rng.choice(others)] += 1
        in_dip = rupture_at is not None and rupture_at - 1 <= t < rupture_at + 1
        roll = rng.random()
        tension.append(2 if in_dip and roll < 0.5 else (1 if roll < 0.08 else 0))
        items.append(per_item)
    return items, tension, rupture_at, repaired


def client_course(rng: random.Random, max_sessions: int) -> ClientCourse:
    """A whole synthetic course of therapy, capped at max_sessions (what fits in the demo window)."""
    course = _pick_course(rng)
    planned = rng.randint(6, 20)
    if course == "drop_out":
        planned = rng.randint(2, 5)
    sessions = max(1, min(planned, max_sessions))
    phq_start = min(27.0, max(6.0, rng.gauss(15, 4)))
    gad_start = min(21.0, max(4.0, rng.gauss(12, 3.5)))
    items, tension, rupture_at, repaired = _alliance_series(rng, sessions)
    goals = [[round(min(10, max(0, rng.gauss(3 + 0.35 * t, 1.2)))) for t in range(sessions)] for _ in range(2)]
    return ClientCourse(
        course=course,
        sessions=sessions,
        planned=planned,
        phq9=_outcome_series(rng, course, phq_start, sessions, 27),
        gad7=_outcome_series(rng, course, gad_start, sessions, 21),
        alliance_items=items,
        tension=tension,
        rupture_at=rupture_at,
        repaired=repaired,
        goals=goals,
        risk_session=rng.randrange(sessions) if rng.random() < RISK_SHARE else None,
    )
