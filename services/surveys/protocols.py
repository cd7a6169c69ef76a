"""Measurement protocols: which instruments a client answers before and after a session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.clients.models import Episode
from services.i18n import N_, UserError
from services.measures import UnknownInstrumentError, load_instrument
from services.surveys.models import Protocol

PHASES = ("pre", "post")
DEFAULT_CODE = "standard"


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol as plain data."""

    code: str
    name: str
    pre_session: tuple[str, ...]
    post_session: tuple[str, ...]
    is_default: bool = False


# Outcome and goals before the session, the Partnership Check after it (CLINICAL.md sections 1 and 2).
DEFAULT_PROTOCOLS = (
    ProtocolSpec(
        code=DEFAULT_CODE,
        name=N_("Standard: PHQ-9, GAD-7 and goals before, Partnership Check after"),
        pre_session=("PHQ-9", "GAD-7", "GOAL-PROGRESS"),
        post_session=("PARTNERSHIP-CHECK",),
        is_default=True,
    ),
    ProtocolSpec(
        code="alliance_only",
        name=N_("Partnership Check only"),
        pre_session=(),
        post_session=("PARTNERSHIP-CHECK",),
    ),
)


class ProtocolError(UserError):
    """A protocol that cannot be used, with a message fit to show."""


def _check_instruments(codes: Sequence[str]) -> list[str]:
    checked = []
    for code in codes:
        try:
            checked.append(load_instrument(code).code)
        except UnknownInstrumentError:
            raise ProtocolError(N_("Unknown instrument %(code)r."), code=code) from None
    if len(set(checked)) != len(checked):
        raise ProtocolError(N_("An instrument is listed twice in the same phase."))
    return checked


def define_protocol(session: Session, spec: ProtocolSpec) -> Protocol:
    """Create a protocol, or return the existing one with that code unchanged (idempotent)."""
    existing = session.scalar(select(Protocol).where(Protocol.code == spec.code))
    if existing is not None:
        return existing
    if not spec.pre_session and not spec.post_session:
        raise ProtocolError(N_("A protocol needs at least one instrument."))
    protocol = Protocol(
        code=spec.code,
        name=spec.name,
        pre_session=_check_instruments(spec.pre_session),
        post_session=_check_instruments(spec.post_session),
        is_default=False,
    )
    session.add(protocol)
    session.flush()
    if spec.is_default and get_default_protocol(session) is None:
        protocol.is_default = True
        session.flush()
    return protocol


def ensure_default_protocols(session: Session) -> list[Protocol]:
    """Make sure the shipped protocols exist (migration 0002 adds them too); safe to call any number of times."""
    return [define_protocol(session, spec) for spec in DEFAULT_PROTOCOLS]


def list_protocols(session: Session) -> list[Protocol]:
    """Every protocol, the default first."""
    return list(session.scalars(select(Protocol).order_by(Protocol.is_default.desc(), Protocol.name, Protocol.id)))


def get_protocol(session: Session, code: str) -> Protocol | None:
    """The protocol with this code, or None."""
    return session.scalar(select(Protocol).where(Protocol.code == code))


def get_default_protocol(session: Session) -> Protocol | None:
    """The practice's default protocol, if one is marked."""
    return session.scalar(select(Protocol).where(Protocol.is_default.is_(True)).order_by(Protocol.id).limit(1))


def set_default_protocol(session: Session, code: str) -> Protocol:
    """Make the protocol with this code the practice's default."""
    protocol = get_protocol(session, code)
    if protocol is None:
        raise ProtocolError(N_("No protocol with code %(code)r."), code=code)
    session.execute(
        update(Protocol)
        .where(Protocol.id != protocol.id)
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )
    protocol.is_default = True
    session.flush()
    return protocol


def protocol_for_episode(session: Session, episode: Episode) -> Protocol | None:
    """The protocol an episode follows: its own choice, else the practice default."""
    return get_protocol(session, episode.protocol_code) or get_default_protocol(session)


def instruments_for(protocol: Protocol | None, phase: str) -> list[str]:
    """The instruments of a phase ("pre" or "post") in a protocol (none without a protocol)."""
    if phase not in PHASES:
        raise ProtocolError(N_("Unknown phase %(phase)r."), phase=phase)
    if protocol is None:
        return []
    return list(protocol.pre_session if phase == "pre" else protocol.post_session)
