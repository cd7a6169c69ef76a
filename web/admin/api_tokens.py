"""Admin: the JSON API's bearer tokens (owner, scope, created, expires, last used) and revoking one.

Tokens are created on the command line (`rapport api-token create`), where the raw token is printed once; this
page never shows a token, only the first characters it was printed with.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import ApiToken, Role
from services.accounts.operations import revoke_api_token
from services.accounts.queries import list_api_tokens
from services.db import utcnow
from web.access import allow
from web.admin.views import bp
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session


@bp.get("/api-tokens")
@allow(Role.ADMIN)
def api_tokens() -> str:
    """Every API token and its state."""
    return render_template("admin/api_tokens.html", tokens=list_api_tokens(db_session()), now=utcnow())


@bp.post("/api-tokens/<int:token_id>/revoke")
@allow(Role.ADMIN)
def revoke_token(token_id: int) -> Response:
    """Revoke a token: its next call gets 401."""
    session = db_session()
    token = session.get(ApiToken, token_id)
    if token is None:
        abort(404)
    if revoke_api_token(session, token, actor_id=current_account().id, ip=client_ip()):
        commit()
        flash(
            _("The token “%(name)s” is revoked. Anything still using it now gets “401 Unauthorized”.", name=token.name),
            "success",
        )
    else:
        flash(_("That token was already revoked."), "info")
    return redirect(url_for("admin.api_tokens"), code=303)
