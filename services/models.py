"""Imports every table so that metadata is complete (Alembic, tests, create_all)."""

from services.accounts.models import (
    ApiToken,
    KioskDevice,
    KnownAddress,
    LoginSession,
    PasswordReset,
    RecoveryCode,
    Role,
    Team,
    TwoFactor,
    User,
)
from services.alerts.models import Alert, AlertAction, EscalationNotice, SignalRecord
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion, GoalRevision
from services.calibration.models import TrajectoryFit
from services.clients.models import Appointment, Client, Episode
from services.db import Base
from services.notifications.models import Notification
from services.ops.models import Heartbeat, JobRun
from services.practice.models import PracticeSetting
from services.reporting.models import Report
from services.reviews.models import Review
from services.surveys.models import Administration, Invitation, InvitationToken, Protocol

__all__ = [
    "Administration",
    "Alert",
    "AlertAction",
    "ApiToken",
    "Appointment",
    "AuditEvent",
    "Base",
    "BriefDiscussion",
    "Client",
    "Episode",
    "EscalationNotice",
    "GoalRevision",
    "Heartbeat",
    "Invitation",
    "InvitationToken",
    "JobRun",
    "KioskDevice",
    "KnownAddress",
    "LoginSession",
    "Notification",
    "PasswordReset",
    "PracticeSetting",
    "Protocol",
    "RecoveryCode",
    "Report",
    "Review",
    "Role",
    "SignalRecord",
    "Team",
    "TrajectoryFit",
    "TwoFactor",
    "User",
]
