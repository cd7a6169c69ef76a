"""The client record page shared by front desk, clinicians and supervisors; every view of it is audited."""

from __future__ import annotations

from flask import abort, render_template

from services.audit.operations import record_client_view
from services.clients.queries import get_client_record
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session


def show_client_record(client_id: int, *, template: str, what: str) -> str:
    """Render a client's record if the viewer may see it (else 404), auditing the view in the same commit."""
    account = current_account()
    session = db_session()
    record = get_client_record(session, account, client_id)
    if record is None:
        abort(404)  # not in this viewer's scope: do not confirm the record exists
    record_client_view(session, actor_id=account.id, client_id=client_id, what=what, ip=client_ip())
    html = render_template(template, record=record)
    commit()  # nothing is shown unless the audit event is stored
    return html
