"""One SQLAlchemy session per request, opened on first use and closed (rolled back) at teardown.

A handler calls ``commit()`` once, at the end, when it has changed something (like indico's RH). Anything it
did not commit is rolled back when the request ends, and after-commit hooks from services.db (enqueueing) run
only on that commit.
"""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from web.app import current_db

_SESSION_KEY = "_rapport_db_session"


def db_session() -> Session:
    """The current request's session (opened lazily)."""
    session: Session | None = g.get(_SESSION_KEY)
    if session is None:
        session = current_db().session()
        setattr(g, _SESSION_KEY, session)
    return session


def commit() -> None:
    """Commit the request's unit of work; after-commit hooks run now."""
    session: Session | None = g.get(_SESSION_KEY)
    if session is not None:
        session.commit()


def rollback() -> None:
    """Throw away the request's uncommitted work (used before rendering an error page)."""
    session: Session | None = g.get(_SESSION_KEY)
    if session is not None:
        session.rollback()


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop(_SESSION_KEY, None)
    if session is not None:
        session.close()  # rolls back whatever the handler did not commit


def init_app(app: Flask) -> None:
    """Close the request's session when the app context ends."""
    app.teardown_appcontext(_close_session)
