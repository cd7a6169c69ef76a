"""Locking an episode's evaluation: one evaluator of an episode at a time, on PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from services.clients.models import Episode
from services.surveys.models import Administration

# Ids per IN list on SQLite (well under its limit on bound parameters); PostgreSQL gets one array.
CHUNK = 1000


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def id_sets(session: Session, column: Any, ids: Sequence[int]) -> Iterable[ColumnElement[bool]]:
    """Conditions that together select ids: one `= ANY(array)` on PostgreSQL, IN lists of CHUNK ids elsewhere."""
    if not ids:
        return
    if not is_sqlite(session):
        yield column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
        return
    for start in range(0, len(ids), CHUNK):
        yield column.in_(ids[start : start + CHUNK])


def lock_episode_of(session: Session, administration_id: int) -> int | None:
    episode_of = select(Administration.episode_id).where(Administration.id == administration_id)
    if is_sqlite(session):
        session.execute(
            update(Episode)
            .where(Episode.id == episode_of.scalar_subquery())
            .values(id=Episode.id)
            .execution_options(synchronize_session=False)
        )
        return session.scalar(episode_of)
    episode_id = session.scalar(episode_of)
    if episode_id is not None:
        session.execute(select(Episode.id).where(Episode.id == episode_id).with_for_update())
    return episode_id


def lock_episodes(session: Session, episode_ids: Sequence[int]) -> None:
    ordered = sorted(episode_ids)
    for episodes in id_sets(session, Episode.id, ordered):
        if is_sqlite(session):
            session.execute(
                update(Episode).where(episodes).values(id=Episode.id).execution_options(synchronize_session=False)
            )
        else:
            # In id order, so that two bulk evaluations never wait for each other crosswise.
            session.execute(select(Episode.id).where(episodes).order_by(Episode.id).with_for_update())
