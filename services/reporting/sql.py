"""SQL building blocks for the report queries that differ by dialect: durations and percentiles.

Everything else in the report queries is portable SQL. Durations are a function compiled per dialect; percentiles
run as ``percentile_cont`` on PostgreSQL (the production path, computed on the server) and, on SQLite, in Python
over the durations of the month, which are few (one per acknowledged alert).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import Float, Select, func, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class hours_between(FunctionElement[float]):
    """The hours from the second timestamp to the first (negative when the first is earlier)."""

    type = Float()
    inherit_cache = True
    name = "hours_between"


@compiles(hours_between, "postgresql")
def _hours_between_pg(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)})) * 24.0)"


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """The continuous percentile (linear interpolation between ranks), as PostgreSQL's percentile_cont computes it."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must lie in 0..1")
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(ordered[lower])
    weight = position - lower
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * weight)


def grouped_percentiles(
    session: Session,
    base: Select[Any],
    *,
    keys: Sequence[ColumnElement[Any]],
    value: ColumnElement[Any],
    fractions: Sequence[float],
) -> dict[tuple[Hashable, ...], tuple[float | None, ...]]:
    """Percentiles of value per group of keys over the rows of base (a select whose FROM and WHERE are set).

    PostgreSQL computes them with percentile_cont ... WITHIN GROUP; SQLite selects the (few) values and the same
    interpolation runs here. Groups without a value are absent.
    """
    if session.get_bind().dialect.name == "postgresql":
        columns = [func.percentile_cont(f).within_group(value).label(f"p{i}") for i, f in enumerate(fractions)]
        stmt = base.with_only_columns(*keys, *columns).where(value.is_not(None)).group_by(*keys)
        out: dict[tuple[Hashable, ...], tuple[float | None, ...]] = {}
        for row in session.execute(stmt):
            key = tuple(row[: len(keys)])
            out[key] = tuple(None if v is None else float(v) for v in row[len(keys) :])
        return out
    values: dict[tuple[Hashable, ...], list[float]] = defaultdict(list)
    for row in session.execute(base.with_only_columns(*keys, value).where(value.is_not(None))):
        values[tuple(row[: len(keys)])].append(float(row[len(keys)]))
    return {key: tuple(percentile_cont(v, f) for f in fractions) for key, v in values.items()}


def tune_for_reporting(session: Session) -> None:
    """On PostgreSQL, give this transaction's report queries room to hash in memory, and skip JIT compilation.

    The report's GROUP BYs and window functions sort or hash a few hundred thousand narrow rows: with the default
    4 MB of work_mem they spill to disk and PostgreSQL picks sort-based plans; JIT costs more to compile than it
    saves on queries of this size. SET LOCAL ends with the transaction, so nothing leaks to other work.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL jit = off"))
