"""Admin and front desk: the paired kiosk tablets (name, paired by, paired at, last seen) and revoking one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.kiosks import KIOSK_IDLE, list_kiosks, revoke_kiosk
from services.accounts.models import KioskDevice, Role
from web.access import allow
from web.admin.views import bp
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session


@bp.get("/kiosks")
@allow(Role.ADMIN, Role.FRONT_DESK)
def kiosks() -> str:
    """Every paired kiosk and its state."""
    return render_template("admin/kiosks.html", kiosks=list_kiosks(db_session()), idle_days=KIOSK_IDLE.days)


@bp.post("/kiosks/<int:device_id>/revoke")
@allow(Role.ADMIN, Role.FRONT_DESK)
def revoke_kiosk_device(device_id: int) -> Response:
    """Revoke a kiosk: from its next request it shows the unpaired screen."""
    session = db_session()
    device = session.get(KioskDevice, device_id)
    if device is None:
        abort(404)
    if revoke_kiosk(session, device, actor_id=current_account().id, ip=client_ip()):
        commit()
        flash(
            _("The kiosk “%(name)s” is revoked. To use that tablet again, pair it again.", name=device.name), "success"
        )
    else:
        flash(_("That kiosk was already revoked."), "info")
    return redirect(url_for("admin.kiosks"), code=303)
