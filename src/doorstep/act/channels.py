"""Channels: how a queued message leaves doorstep — SMTP email, a signed JSON webhook, Slack,
a task and EQL status in HubSpot or Salesforce (`crm`), or, with `[act] deliver = "file"`, a
file per message in the workspace's outbox/ folder.

Every channel carries the delivery's idempotency key (email: the Message-ID and a header;
webhooks: the `Idempotency-Key` header), so a receiver that sees a message twice after a
worker crash can tell it is the same message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

from doorstep.config import ActConfig, ConfigError

EMAIL = "email"
WEBHOOK = "webhook"
SLACK = "slack"
HUBSPOT = "hubspot"
SALESFORCE = "salesforce"
CHANNELS = (EMAIL, WEBHOOK, SLACK, HUBSPOT, SALESFORCE)

SIGNATURE_HEADER = "X-Doorstep-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
WEBHOOK_SECRET_ENV = "DOORSTEP_WEBHOOK_SECRET"
SMTP_PASSWORD_ENV = "DOORSTEP_SMTP_PASSWORD"
USER_AGENT = "doorstep"
# Headers up to the RFC 5322 limit, so the key headers arrive unfolded and compare exactly.
_EMAIL_POLICY = policy.SMTP.clone(max_line_length=998)


class DeliveryError(Exception):
    """A channel could not hand a message over; the worker retries it later.

    `retry_after`: the receiver asked to wait this many seconds (a rate limit: not a failed
    try); `permanent`: no retry can succeed (a wrong id, a refused token), so the delivery goes
    to the dead letters at once.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class OutgoingMessage:
    """A queued delivery as a channel sends it."""

    delivery_id: int
    lead_id: str
    action: str
    recipient: str
    idempotency_key: str
    subject: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """Something that sends messages; `send` raises DeliveryError when it cannot."""

    name: str

    def send(self, message: OutgoingMessage) -> None: ...

    def close(self) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a webhook body: "sha256=" + hex HMAC-SHA256."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether a received webhook's signature header matches its body (for receivers)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def webhook_body(message: OutgoingMessage) -> bytes:
    """The JSON a webhook receives for a message; the same bytes on every retry."""
    document = {
        "idempotency_key": message.idempotency_key,
        "delivery_id": message.delivery_id,
        "lead_id": message.lead_id,
        "action": message.action,
        "recipient": message.recipient,
        "subject": message.subject,
        "text": message.text,
        "data": dict(message.data),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def slack_escape(text: str) -> str:
    """Text as Slack mrkdwn shows it literally: `&`, `<` and `>` escaped, so that `<!channel>`
    or `<http://x|Reset your password>` from a partner's data is neither a ping nor a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: OutgoingMessage) -> bytes:
    """The Slack incoming-webhook JSON for a message: {"text": ...}, escaped for mrkdwn."""
    text = message.text
    if message.subject:
        text = f"*{message.subject}*\n{text}"
    return json.dumps({"text": slack_escape(text)}).encode("utf-8")


class EmailChannel:
    """Email through an SMTP server, one connection reused for a worker run."""

    name = EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def message(self, message: OutgoingMessage) -> EmailMessage:
        """The email for a message; its Message-ID derives from the idempotency key."""
        email = EmailMessage(policy=_EMAIL_POLICY)
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = " ".join(message.subject.split())  # one line, whatever was queued
        email["Message-ID"] = f"<{message.idempotency_key}@doorstep>"
        email["X-Doorstep-Idempotency-Key"] = message.idempotency_key
        email["X-Doorstep-Lead"] = message.lead_id
        email.set_content(message.text)
        return email

    def send(self, message: OutgoingMessage) -> None:
        """Send one message; a connection problem drops the connection for the next try."""
        if "@" not in message.recipient:
            raise DeliveryError(f"recipient {message.recipient!r} is not an email address")
        try:
            self._connection().send_message(self.message(message))
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from exc

    def close(self) -> None:
        """Say goodbye to the SMTP server, if connected."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


class _HttpChannel:
    """A POST of JSON to one URL; any answer but 2xx is a failure."""

    name = ""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})

    def body(self, message: OutgoingMessage) -> bytes:
        raise NotImplementedError

    def headers(self, message: OutgoingMessage, body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.idempotency_key}

    def send(self, message: OutgoingMessage) -> None:
        """POST the message; raise DeliveryError on a network error or a non-2xx answer."""
        body = self.body(message)
        try:
            response = self.client.post(self.url, content=body, headers=self.headers(message, body))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name} {self.url}: {exc}") from exc
        if not response.is_success:
            answer = response.text[:200].strip()
            raise DeliveryError(f"{self.name} {self.url}: HTTP {response.status_code} {answer}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()


class WebhookChannel(_HttpChannel):
    """A generic JSON webhook, signed with HMAC-SHA256 of the body."""

    name = WEBHOOK

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0) -> None:
        super().__init__(url, timeout=timeout)
        self.secret = secret

    def body(self, message: OutgoingMessage) -> bytes:
        return webhook_body(message)

    def headers(self, message: OutgoingMessage, body: bytes) -> dict[str, str]:
        return {**super().headers(message, body), SIGNATURE_HEADER: sign(self.secret, body)}


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook."""

    name = SLACK

    def body(self, message: OutgoingMessage) -> bytes:
        return slack_body(message)


OUTBOX_DIR = "outbox"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileChannel:
    """Writes each message, as channel `name` would send it, to a file in the outbox folder:
    the email as a .eml file (open it in any mail client), a webhook's or Slack's JSON body as
    a .json file. A message written again (a retry) replaces its own file."""

    def __init__(self, name: str, folder: Path, config: ActConfig) -> None:
        self.name, self.folder, self.config = name, folder, config

    def _content(self, message: OutgoingMessage) -> tuple[str, bytes]:
        if self.name == EMAIL:
            email = EmailChannel("", 0, self.config.sender).message(message)
            return "eml", email.as_bytes(policy=_EMAIL_POLICY)
        if self.name == SLACK:
            return "json", slack_body(message)
        return "json", webhook_body(message)

    def send(self, message: OutgoingMessage) -> None:
        """Write the message's file (atomically); DeliveryError when the folder is unwritable."""
        extension, content = self._content(message)
        stem = _UNSAFE.sub("_", f"{message.lead_id}-{message.action}-{self.name}")
        path = self.folder / f"{stem}-{message.idempotency_key[:12]}.{extension}"
        partial = path.with_name(path.name + ".partial")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(content)
            os.replace(partial, path)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Nothing to close."""


def _webhook_secret(config: ActConfig) -> str | None:
    return os.environ.get(WEBHOOK_SECRET_ENV) or config.webhook_secret


def check_channels(config: ActConfig) -> None:
    """Raise ConfigError when a channel [act] uses lacks a setting it needs."""
    if config.deliver == "file":
        return  # nothing is sent: no server, address or secret is needed
    used = set(config.channels.rep + config.channels.partner + config.channels.escalation)
    if WEBHOOK in used and not config.webhook_url:
        raise ConfigError("[act] uses the webhook channel but webhook_url is not set.")
    if WEBHOOK in used and not _webhook_secret(config):
        raise ConfigError(
            f"[act] uses the webhook channel: set webhook_secret or {WEBHOOK_SECRET_ENV}."
        )
    if SLACK in used and not config.slack_webhook_url:
        raise ConfigError("[act] uses the slack channel but slack_webhook_url is not set.")
    if SALESFORCE in used and not config.crm.salesforce_url:
        raise ConfigError("[act] uses the salesforce channel but [act.crm] salesforce_url is "
                          "not set.")


def open_channel(name: str, config: ActConfig, outbox: Path | None = None) -> Channel:
    """The channel called `name`, set up from [act]; with `deliver = "file"`, the file writer
    for it (into `outbox`)."""
    if name not in CHANNELS:
        raise ConfigError(f"unknown channel {name!r}; use one of: {', '.join(CHANNELS)}.")
    if config.deliver == "file":
        if outbox is None:
            raise ConfigError('[act] deliver = "file" needs a workspace to write outbox/ in.')
        return FileChannel(name, outbox, config)
    if name == EMAIL:
        return EmailChannel(
            config.smtp_host,
            config.smtp_port,
            config.sender,
            starttls=config.smtp_starttls,
            username=config.smtp_username,
            password=os.environ.get(SMTP_PASSWORD_ENV),
            timeout=config.timeout_seconds,
        )
    if name == WEBHOOK:
        secret = _webhook_secret(config)
        if not config.webhook_url or not secret:
            raise ConfigError("the webhook channel needs [act] webhook_url and webhook_secret.")
        return WebhookChannel(config.webhook_url, secret, timeout=config.timeout_seconds)
    if name == SLACK:
        if not config.slack_webhook_url:
            raise ConfigError("the slack channel needs [act] slack_webhook_url.")
        return SlackChannel(config.slack_webhook_url, timeout=config.timeout_seconds)
    if name in (HUBSPOT, SALESFORCE):
        from doorstep.act.crm import open_crm_channel

        return open_crm_channel(name, config.crm, config.timeout_seconds)
    raise ConfigError(f"unknown channel {name!r}; use one of: {', '.join(CHANNELS)}.")


def close_all(channels: Iterable[Channel]) -> None:
    """Close every channel."""
    for channel in channels:
        channel.close()
