"""The outbox and its worker: queue once per key, claim without sharing, retry with backoff, die."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from test_act_channels import SECRET, MailStore, WebhookReceiver, receiver, smtp_server

from doorstep.act.outbox import Draft, Templates, _insert_if_absent, enqueue, idempotency_key
from doorstep.act.worker import claim, retry_delay, run_worker
from doorstep.config import ActConfig
from doorstep.store import Store
from doorstep.store.models import Delivery

__all__ = ["receiver", "smtp_server"]  # fixtures shared with the channel tests

NOW = datetime(2026, 11, 24, 9, 0)
CONTEXT: dict[str, Any] = {
    "lead": {"lead_id": "L-1", "action": "rep_outreach", "action_label": "rep outreach",
             "due_date": "2026-11-26", "warmth_score": 70.0, "warmth_band": "medium"},
    "account": {"account_id": "a1", "name": "Northwind"},
    "partner": {"partner_id": "p1", "name": "Cloudway"},
    "partner_account": {"partner_account_id": "x1", "name": "NORTHWIND",
                        "relationship": "customer"},
    "owner": {"rep_id": "r1", "name": "Ada", "email": "ada@example.com"},
    "recipient": "ada@example.com",
}


def draft(lead_id: str = "L-1", channel: str = "email") -> Draft:
    return Draft(lead_id, "assignment", "ada@example.com", channel, CONTEXT)


def queue(store: Store, drafts: list[Draft], templates: Templates | None = None) -> list[Draft]:
    with store.engine.begin() as conn:
        return enqueue(conn, drafts, templates or Templates(), now=NOW)


def rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(Delivery).order_by(Delivery.delivery_id)))


def settings(**values: Any) -> ActConfig:
    return ActConfig.model_validate({"retry_seconds": 60, "max_attempts": 3, **values})


def test_the_idempotency_key_is_sha256_of_lead_action_recipient_and_channel() -> None:
    expected = hashlib.sha256(
        "\x1f".join(["L-1", "assignment", "ada@example.com", "email"]).encode()
    ).hexdigest()
    assert idempotency_key("L-1", "assignment", "ada@example.com", "email") == expected
    assert idempotency_key("L-1", "assignment", "Ada@Example.com ", "email") == expected
    assert idempotency_key("L-1", "assignment", "ada@example.com", "slack") != expected


def test_a_draft_is_queued_once_however_often_it_is_enqueued(store: Store) -> None:
    first = queue(store, [draft(), draft(), draft("L-2")])
    assert [d.lead_id for d in first] == ["L-1", "L-2"]
    again = queue(store, [draft(), draft("L-2"), draft("L-3")])
    assert [d.lead_id for d in again] == ["L-3"]
    assert [(r.lead_id, r.status, r.attempts) for r in rows(store)] == [
        ("L-1", "pending", 0), ("L-2", "pending", 0), ("L-3", "pending", 0),
    ]


def test_a_queued_message_keeps_its_text_when_the_template_changes(
    store: Store, tmp_path: Path
) -> None:
    queue(store, [draft()])
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "assignment.j2").write_text("Subject: new\n\nnew text\n")
    queue(store, [draft(), draft("L-2")], Templates(tmp_path))
    payloads = {r.lead_id: r.payload for r in rows(store)}
    assert payloads["L-1"]["subject"].startswith("New rep outreach lead: Northwind")
    assert payloads["L-2"]["subject"] == "new"


def test_inserting_a_key_that_is_already_there_is_ignored(store: Store) -> None:
    queue(store, [draft()])
    row = {
        "lead_id": "L-1", "channel": "email", "recipient": "someone@else.example",
        "action": "assignment", "idempotency_key": draft().idempotency_key, "status": "pending",
        "attempts": 0, "payload": {"subject": "x"}, "created_at": NOW, "next_attempt_at": NOW,
    }
    with store.engine.begin() as conn:  # as a concurrent run would, past the pre-check
        _insert_if_absent(conn, [row])
    assert [r.recipient for r in rows(store)] == ["ada@example.com"]


def test_a_claim_is_never_shared_and_a_lapsed_claim_is_claimed_again(store: Store) -> None:
    queue(store, [draft(f"L-{i}") for i in range(5)])
    first = claim(store, now=NOW, batch_size=3, lease_seconds=300)
    second = claim(store, now=NOW, batch_size=3, lease_seconds=300)
    assert len(first) == 3 and len(second) == 2
    assert not {c.message.delivery_id for c in first} & {c.message.delivery_id for c in second}
    assert claim(store, now=NOW + timedelta(seconds=299), batch_size=10, lease_seconds=300) == []
    lapsed = claim(store, now=NOW + timedelta(seconds=300), batch_size=10, lease_seconds=300)
    assert len(lapsed) == 5  # the worker that held them never said how it went
    assert {r.status for r in rows(store)} == {"sending"}


def test_the_worker_sends_due_email_and_marks_it_sent(
    store: Store, smtp_server: tuple[int, MailStore]
) -> None:
    port, mail = smtp_server
    queue(store, [draft("L-1"), draft("L-2")])
    config = settings(smtp_host="127.0.0.1", smtp_port=port, **{"from": "doorstep@example.com"})
    report = run_worker(store, config, now=NOW)
    assert report.by_channel["email"].sent == 2 and report.pending == 0
    assert sorted(m["Subject"] for _, _, m in mail.envelopes) == [
        "New rep outreach lead: Northwind (due 2026-11-26)"
    ] * 2
    assert [(r.status, r.attempts, r.sent_at) for r in rows(store)] == [("sent", 1, NOW)] * 2
    assert run_worker(store, config, now=NOW + timedelta(days=1)).sent == 0  # nothing twice
    assert len(mail.envelopes) == 2


def test_deliveries_held_by_a_stopped_runs_lease_are_reported_as_such(
    store: Store, smtp_server: tuple[int, MailStore]
) -> None:
    port, mail = smtp_server
    queue(store, [draft("L-1"), draft("L-2"), draft("L-3")])
    claim(store, now=NOW, batch_size=2, lease_seconds=300)  # a run that was killed after this
    config = settings(smtp_host="127.0.0.1", smtp_port=port, **{"from": "doorstep@example.com"})
    report = run_worker(store, config, now=NOW)
    assert (report.sent, report.pending, report.sending) == (1, 0, 2)
    assert report.lease_ends == NOW + timedelta(seconds=300)
    after = run_worker(store, config, now=NOW + timedelta(seconds=300))
    assert (after.sent, after.sending, after.lease_ends) == (2, 0, None)
    assert len(mail.envelopes) == 3


def test_failures_back_off_exponentially_then_the_delivery_is_dead(
    store: Store, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [503] * 10
    queue(store, [draft(channel="webhook")])
    config = settings(webhook_url=receiver.url, webhook_secret=SECRET)

    first = run_worker(store, config, now=NOW)
    [row] = rows(store)
    assert first.by_channel["webhook"].failed == 1
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "pending", 1, NOW + timedelta(seconds=60)
    )
    assert "HTTP 503" in row.last_error

    early = run_worker(store, config, now=NOW + timedelta(seconds=59))
    assert early.failed == 0 and len(receiver.requests) == 1  # not due yet

    run_worker(store, config, now=NOW + timedelta(seconds=60))
    [row] = rows(store)
    assert (row.attempts, row.next_attempt_at) == (2, NOW + timedelta(seconds=180))

    last = run_worker(store, config, now=NOW + timedelta(seconds=180))
    [row] = rows(store)
    assert last.by_channel["webhook"].dead == 1
    assert (row.status, row.attempts, row.next_attempt_at) == ("dead", 3, None)
    assert run_worker(store, config, now=NOW + timedelta(days=9)).by_channel == {}
    assert len(receiver.requests) == 3


def test_a_delivery_that_fails_once_is_sent_on_the_retry(
    store: Store, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [500]
    queue(store, [draft(channel="webhook")])
    config = settings(webhook_url=receiver.url, webhook_secret=SECRET)
    run_worker(store, config, now=NOW)
    report = run_worker(store, config, now=NOW + timedelta(minutes=1))
    assert report.by_channel["webhook"].sent == 1
    [row] = rows(store)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert receiver.processed == [row.idempotency_key]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    config = settings(retry_seconds=10, max_retry_seconds=50)
    assert [retry_delay(n, config).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 50]


def test_a_channel_the_config_cannot_open_fails_the_delivery_not_the_worker(
    store: Store,
) -> None:
    queue(store, [draft(channel="slack")])
    report = run_worker(store, settings(), now=NOW)
    assert report.by_channel["slack"].failed == 1
    [row] = rows(store)
    assert "slack_webhook_url" in row.last_error
    with store.engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
        ).scalar_one()
    assert pending == 1
