"""One SQLAlchemy session per request, opened on first use and closed (rolled back) at teardown.

A handler calls ``commit()`` once, at the end, when it has changed something (like indico's RH). Anything it
did not commit is rolled back when the request ends, and after-commit hooks from services.db (enqueueing) run
only on that commit.

A request whose connection drops before its commit (a database restart, a terminated backend) is run again once,
from its before-request hooks on, with a fresh session and connection: nothing of it was written, so the retry
cannot double anything (the survey submit included). A drop during COMMIT itself is not guessed at: services.db
asks the server whether the transaction committed, and only a transaction that did not is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import Flask, Response, g, request
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.db import NotCommitted, commit_checked, is_disconnect
from web.app import current_db

log = logging.getLogger(__name__)
_SESSION_KEY = "_rapport_db_session"
_COMMITTED_KEY = "_rapport_db_committed"


def db_session() -> Session:
    """The current request's session (opened lazily)."""
    session: Session | None = g.get(_SESSION_KEY)
    if session is None:
        session = current_db().session()
        setattr(g, _SESSION_KEY, session)
    return session


def commit(*, idempotent: bool = False) -> None:
    """Commit the request's unit of work; after-commit hooks run now.

    idempotent=True marks bookkeeping that may safely be committed again if the request is retried (the login
    session's idle timer); any other commit makes the request final: it is never run again after it.
    """
    session: Session | None = g.get(_SESSION_KEY)
    if session is not None:
        commit_checked(session)
        if not idempotent:
            setattr(g, _COMMITTED_KEY, True)


def rollback() -> None:
    """Throw away the request's uncommitted work (used before rendering an error page)."""
    session: Session | None = g.get(_SESSION_KEY)
    if session is not None:
        session.rollback()


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop(_SESSION_KEY, None)
    if session is None:
        return
    try:
        session.close()  # rolls back whatever the handler did not commit
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        # The server ended the connection after the response was made: there is nothing left to roll back.
        log.warning("database connection already gone when closing the request's session")
        session.invalidate()


def _discard_session() -> None:
    """Drop the request's session and its connection without talking to the server (the connection is gone)."""
    session: Session | None = g.pop(_SESSION_KEY, None)
    if session is not None:
        session.invalidate()


def _live_session() -> None:
    """Open the retry's session on a connection that answers.

    The server that ended the first connection (a restart, terminated backends) likely ended idle pooled ones too.
    A SELECT 1 through SQLAlchemy that finds its connection dead makes the pool replace every connection older than
    that moment, so the next try draws a new one.
    """
    for _attempt in range(3):
        try:
            db_session().execute(text("SELECT 1"))
            return
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            _discard_session()


def _retryable(exc: Exception) -> bool:
    """True when exc is a dropped connection (or a COMMIT that did not happen) before this request committed."""
    return (isinstance(exc, NotCommitted) or is_disconnect(exc)) and not g.get(_COMMITTED_KEY)


# Runs after the first whose connection dropped before their commit. One is not always enough: a failover or an
# operator ending every backend again and again (bench-faults ends them every 0.4 s) can take the retry's fresh
# connection too: 2 of 800 requests of a burst met that with a single retry.
DROPPED_RETRIES = 2


def retry_on_dropped_connection(dispatch: Callable[[], Response]) -> Callable[[], Response]:
    """Wrap Flask's full_dispatch_request: run it again on a fresh connection (at most DROPPED_RETRIES times) when a
    run lost its own before it committed."""

    @wraps(dispatch)
    def dispatch_once_more_if_dropped() -> Response:
        for retry in range(DROPPED_RETRIES + 1):
            try:
                return dispatch()
            except Exception as exc:
                if retry == DROPPED_RETRIES or not _retryable(exc):
                    raise
                log.warning(
                    "database connection dropped before commit on %s %s; running it again",
                    request.method,
                    request.path,
                    exc_info=True,
                )
            _discard_session()
            _live_session()
        raise AssertionError("unreachable")  # the last run returned or raised

    return dispatch_once_more_if_dropped


def init_app(app: Flask) -> None:
    """Close the request's session when the app context ends; retry a request whose connection dropped."""
    app.teardown_appcontext(_close_session)
    app.full_dispatch_request = retry_on_dropped_connection(app.full_dispatch_request)  # type: ignore[method-assign]
