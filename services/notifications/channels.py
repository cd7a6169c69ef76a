"""Delivery channels: SMTP or an outbox folder for email; an outbox folder or a signed webhook for SMS."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from services.config import Settings


class DeliveryError(Exception):
    """Delivery failed; `transient` says whether trying again later may help."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message ready to hand to a channel."""

    notification_id: int
    to_address: str
    subject: str
    body: str
    attempt: int = 1


def message_id(notification_id: int) -> str:
    """The Message-ID of a notification's email: the same on every attempt, so a receiver can drop a duplicate."""
    return f"<rapport-notification-{notification_id}@rapport.invalid>"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def send_email(settings: Settings, message: OutgoingMessage) -> str:
    """Send over SMTP when configured, else write an .eml file to the outbox; returns the Message-ID."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = message.to_address
    msg["Subject"] = message.subject
    msg["Date"] = formatdate(localtime=False)
    # A stable Message-ID per notification lets receiving servers drop a rare duplicate delivery (a worker that
    # died after the server took the message but before its reply sends it again: delivery is at least once).
    msg["Message-ID"] = message_id(message.notification_id)
    msg["X-Rapport-Notification"] = str(message.notification_id)
    msg["X-Rapport-Attempt"] = str(message.attempt)
    msg.set_content(message.body)
    if not settings.smtp_host:
        _write_atomically(settings.outbox_dir / f"email-{message.notification_id:08d}.eml", bytes(msg))
        return str(msg["Message-ID"])
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"recipient refused: {exc.recipients}", transient=False) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP error: {exc}") from exc
    return str(msg["Message-ID"])


def sms_signature(secret: str, body: bytes) -> str:
    """HMAC-SHA256 hex signature a gateway checks to trust a webhook call."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_sms(settings: Settings, message: OutgoingMessage) -> str:
    """Send an SMS through the configured backend; returns a delivery reference."""
    payload = json.dumps(
        {"id": f"rapport-{message.notification_id}", "to": message.to_address, "text": message.body},
        sort_keys=True,
    ).encode()
    if settings.sms_backend == "outbox":
        _write_atomically(settings.outbox_dir / f"sms-{message.notification_id:08d}.json", payload)
        return f"outbox:{message.notification_id}"
    if not (settings.sms_webhook_url and settings.sms_webhook_secret):
        raise DeliveryError("SMS webhook backend is not configured", transient=False)
    request = urllib.request.Request(  # noqa: S310 - the URL is the practice's configured gateway
        settings.sms_webhook_url,
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Rapport-Signature": "sha256=" + sms_signature(settings.sms_webhook_secret, payload),
            "Idempotency-Key": f"rapport-{message.notification_id}",
            "X-Rapport-Attempt": str(message.attempt),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return f"webhook:{response.status}"
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"SMS gateway answered {exc.code}", transient=exc.code >= 500 or exc.code == 429) from exc
    except OSError as exc:
        raise DeliveryError(f"SMS gateway unreachable: {exc}") from exc
