"""Channels against real servers on loopback: aiosmtpd for email, http.server for webhooks."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from doorstep.act.channels import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    DeliveryError,
    EmailChannel,
    OutgoingMessage,
    SlackChannel,
    WebhookChannel,
    signature_is_valid,
    webhook_body,
)

SECRET = "s3cret-for-tests"

MESSAGE = OutgoingMessage(
    delivery_id=7,
    lead_id="L-a1",
    action="partner_intro",
    recipient="kim@cloudway.example",
    idempotency_key="k" * 64,
    subject="Introduction request: Northwind",
    text="Could you introduce Ada?\n",
    data={"lead": {"lead_id": "L-a1"}},
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a real SMTP server ------------------------------------------------------------------


class MailStore:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, MailStore]]:
    """A real SMTP server on 127.0.0.1: its port and what it received."""
    mail = MailStore()
    port = free_port()
    controller = Controller(mail, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mail
    controller.stop()


# --- a real webhook receiver -------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    key: str | None
    body: bytes
    headers: dict[str, str]
    signature_ok: bool
    complete: bool = True  # the whole body arrived (a killed sender may stop half-way)


@dataclass
class WebhookReceiver:
    """An HTTP server on loopback that checks signatures and deduplicates on Idempotency-Key.

    `statuses` are answered in turn before the default 200; `before_reply(n)` runs for the
    n-th request before it is answered (the crash test stops the worker there).
    """

    secret: str | None = SECRET
    statuses: list[int] = field(default_factory=list)
    before_reply: Callable[[int], None] | None = None
    requests: list[Received] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    first_body: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        complete = len(body) == int(request.headers.get("Content-Length", 0))
        ok = self.secret is None or signature_is_valid(
            self.secret, body, request.headers.get(SIGNATURE_HEADER)
        )
        with self.lock:
            self.requests.append(
                Received(request.path, key, body, dict(request.headers.items()), ok, complete)
            )
            number = len(self.requests)
            status = self.statuses.pop(0) if self.statuses else 200
            if ok and status == 200 and key is not None:
                if key in self.first_body:
                    self.duplicates.append(key)
                else:
                    self.first_body[key] = body
                    self.processed.append(key)
        if self.before_reply is not None:
            self.before_reply(number)
        status = status if ok else 401
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.end_headers()
            request.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "refused"}')
        except OSError:  # the sender is gone (the crash test kills it)
            pass

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


# --- email -------------------------------------------------------------------------------


def test_email_reaches_the_smtp_server_with_the_key_as_message_id(
    smtp_server: tuple[int, MailStore],
) -> None:
    port, mail = smtp_server
    channel = EmailChannel("127.0.0.1", port, "doorstep@example.com", timeout=5)
    channel.send(MESSAGE)
    channel.send(MESSAGE)  # a resend keeps its Message-ID, so mail clients thread it as one
    channel.close()
    assert len(mail.envelopes) == 2
    sender, recipients, message = mail.envelopes[0]
    assert sender == "doorstep@example.com" and recipients == ["kim@cloudway.example"]
    assert message["Subject"] == "Introduction request: Northwind"
    assert message["Message-ID"] == f"<{'k' * 64}@doorstep>"
    assert message["X-Doorstep-Idempotency-Key"] == "k" * 64
    body = message.get_content()  # type: ignore[attr-defined]
    assert body.replace("\r\n", "\n") == "Could you introduce Ada?\n"
    assert mail.envelopes[1][2]["Message-ID"] == message["Message-ID"]


def test_email_to_something_that_is_not_an_address_fails() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), "doorstep@example.com")
    with pytest.raises(DeliveryError, match="not an email address"):
        channel.send(OutgoingMessage(1, "L-a1", "assignment", "r1", "k", "s", "t"))


def test_email_with_no_smtp_server_listening_fails_as_a_delivery_error() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), "doorstep@example.com", timeout=2)
    with pytest.raises(DeliveryError, match="SMTP 127.0.0.1"):
        channel.send(MESSAGE)


# --- webhooks ----------------------------------------------------------------------------


def test_webhook_is_signed_and_carries_the_idempotency_key(receiver: WebhookReceiver) -> None:
    channel = WebhookChannel(receiver.url, SECRET, timeout=5)
    channel.send(MESSAGE)
    channel.close()
    [request] = receiver.requests
    assert request.signature_ok
    assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
    assert request.key == "k" * 64
    document = json.loads(request.body)
    assert document["lead_id"] == "L-a1" and document["action"] == "partner_intro"
    assert document["idempotency_key"] == "k" * 64
    assert document["data"] == {"lead": {"lead_id": "L-a1"}}
    assert receiver.processed == ["k" * 64]


def test_the_receiver_processes_a_resent_message_once(receiver: WebhookReceiver) -> None:
    channel = WebhookChannel(receiver.url, SECRET, timeout=5)
    channel.send(MESSAGE)
    channel.send(MESSAGE)
    channel.close()
    assert len(receiver.requests) == 2
    assert receiver.processed == ["k" * 64] and receiver.duplicates == ["k" * 64]
    assert receiver.requests[0].body == receiver.requests[1].body == webhook_body(MESSAGE)


def test_a_webhook_signed_with_the_wrong_secret_is_refused(receiver: WebhookReceiver) -> None:
    channel = WebhookChannel(receiver.url, "not-the-secret", timeout=5)
    with pytest.raises(DeliveryError, match="HTTP 401"):
        channel.send(MESSAGE)
    channel.close()
    assert receiver.processed == [] and receiver.requests[0].signature_ok is False


def test_a_server_error_is_a_delivery_error(receiver: WebhookReceiver) -> None:
    receiver.statuses = [503]
    channel = WebhookChannel(receiver.url, SECRET, timeout=5)
    with pytest.raises(DeliveryError, match="HTTP 503"):
        channel.send(MESSAGE)
    channel.send(MESSAGE)  # the next try gets through
    channel.close()
    assert receiver.processed == ["k" * 64]


def test_a_webhook_nobody_listens_on_fails_as_a_delivery_error() -> None:
    channel = WebhookChannel(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout=2)
    with pytest.raises(DeliveryError, match="webhook http://127.0.0.1"):
        channel.send(MESSAGE)
    channel.close()


def test_slack_gets_the_incoming_webhook_format() -> None:
    with WebhookReceiver(secret=None) as slack:
        channel = SlackChannel(slack.url, timeout=5)
        channel.send(MESSAGE)
        channel.close()
    [request] = slack.requests
    assert json.loads(request.body) == {
        "text": "*Introduction request: Northwind*\nCould you introduce Ada?\n"
    }
    assert SIGNATURE_HEADER not in request.headers
