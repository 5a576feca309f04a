"""The outbox worker: claim due deliveries, send them, mark them sent; retry failures with backoff.

A claim is one UPDATE ... RETURNING that moves a batch from `pending` to `sending` (on
PostgreSQL with FOR UPDATE SKIP LOCKED, so workers never share a batch). While a delivery is
`sending`, its `next_attempt_at` is the end of the claim's lease: if the worker dies between
sending and marking, the delivery is claimed again after the lease and sent again with the same
idempotency key, so receivers see every message at least once and can drop the repeat. Each
outcome is committed on its own, right after the send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from doorstep.act.channels import (
    OUTBOX_DIR,
    Channel,
    DeliveryError,
    OutgoingMessage,
    close_all,
    open_channel,
)
from doorstep.act.outbox import DEAD, PENDING, SENDING, SENT
from doorstep.config import ActConfig, ConfigError
from doorstep.store import Store
from doorstep.store.models import Delivery
from doorstep.workspace import Workspace

_ERROR_CHARS = 1000


@dataclass
class ChannelCounts:
    """What one worker run did on one channel."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


@dataclass
class WorkerReport:
    """What one worker run did, per channel, and what is still waiting."""

    by_channel: dict[str, ChannelCounts] = field(default_factory=dict)
    pending: int = 0
    # claimed by a run that stopped before marking them: sent again once the lease ends
    sending: int = 0
    lease_ends: datetime | None = None
    # why deliveries failed: (channel, cause) -> how many
    causes: Counter[tuple[str, str]] = field(default_factory=Counter)
    outbox: Path | None = None  # where messages were written, with [act] deliver = "file"

    def counts(self, channel: str) -> ChannelCounts:
        """The counts of one channel, created on first use."""
        return self.by_channel.setdefault(channel, ChannelCounts())

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.by_channel.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.by_channel.values())

    @property
    def dead(self) -> int:
        return sum(c.dead for c in self.by_channel.values())


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds: the message, its channel and the attempts made before."""

    message: OutgoingMessage
    channel: str
    attempts: int


def utc_now() -> datetime:
    """The current time as a naive UTC datetime, as the store keeps times."""
    return datetime.now(UTC).replace(tzinfo=None)


def retry_delay(attempts: int, config: ActConfig) -> timedelta:
    """The wait before the next try after `attempts` failed ones: doubling, capped."""
    seconds = config.retry_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config.max_retry_seconds))


def claim(store: Store, *, now: datetime, batch_size: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to `batch_size` deliveries that are due (or whose claim lapsed), oldest first."""
    d = Delivery
    due = (
        select(d.delivery_id)
        .where(d.status.in_((PENDING, SENDING)), d.next_attempt_at <= now)
        .order_by(d.next_attempt_at, d.delivery_id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(d)
        .where(d.delivery_id.in_(due))
        .values(status=SENDING, next_attempt_at=now + timedelta(seconds=lease_seconds))
        .returning(
            d.delivery_id,
            d.lead_id,
            d.channel,
            d.recipient,
            d.action,
            d.idempotency_key,
            d.attempts,
            d.payload,
        )
    )
    with store.engine.begin() as conn:
        rows = conn.execute(statement).all()
    claimed = []
    for delivery_id, lead_id, channel, recipient, action, key, attempts, payload in sorted(rows):
        body: dict[str, Any] = payload or {}
        message = OutgoingMessage(
            delivery_id=delivery_id,
            lead_id=lead_id,
            action=action,
            recipient=recipient,
            idempotency_key=key,
            subject=str(body.get("subject", "")),
            text=str(body.get("text", "")),
            data=body.get("data") or {},
        )
        claimed.append(Claimed(message, channel, int(attempts)))
    return claimed


def mark_sent(store: Store, delivery_id: int, *, now: datetime) -> None:
    """Record a delivery as sent."""
    d = Delivery
    with store.engine.begin() as conn:
        conn.execute(
            update(d)
            .where(d.delivery_id == delivery_id, d.status == SENDING)
            .values(
                status=SENT, sent_at=now, attempts=d.attempts + 1, last_error=None,
                next_attempt_at=None,
            )
        )


def mark_failed(
    store: Store, item: Claimed, error: str, *, now: datetime, config: ActConfig,
    retry_after: float | None = None, permanent: bool = False,
) -> bool:
    """Record a failed try: back to pending with a later retry, or dead; True when dead.

    A receiver's `retry_after` (a rate limit) sets the wait and is not a failed try; a
    `permanent` failure is dead at once.
    """
    attempts = item.attempts + (0 if retry_after is not None else 1)
    dead = permanent or attempts >= config.max_attempts
    wait = timedelta(seconds=retry_after) if retry_after is not None else \
        retry_delay(attempts, config)
    d = Delivery
    with store.engine.begin() as conn:
        conn.execute(
            update(d)
            .where(d.delivery_id == item.message.delivery_id, d.status == SENDING)
            .values(
                status=DEAD if dead else PENDING,
                attempts=attempts,
                last_error=error[:_ERROR_CHARS],
                next_attempt_at=None if dead else now + wait,
            )
        )
    return dead


def _waiting(store: Store) -> tuple[int, int, datetime | None]:
    """Deliveries pending, deliveries held by a lease, and when the first lease ends."""
    d = Delivery
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(d.status, func.count(), func.min(d.next_attempt_at))
            .where(d.status.in_((PENDING, SENDING)))
            .group_by(d.status)
        ).all()
    counts = {status: (int(n), first) for status, n, first in rows}
    pending, _ = counts.get(PENDING, (0, None))
    sending, lease_ends = counts.get(SENDING, (0, None))
    return pending, sending, lease_ends


def run_worker(
    store: Store,
    config: ActConfig,
    *,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    max_batches: int | None = None,
    outbox: Path | None = None,
) -> WorkerReport:
    """Send every delivery that is due, batch by batch, until none is left to claim.

    `now` fixes the clock (tests); `channels` replaces the channels [act] would open.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utc_now
    report = WorkerReport(outbox=outbox if config.deliver == "file" else None)
    opened: dict[str, Channel] = dict(channels or {})
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            batch = claim(
                store,
                now=clock(),
                batch_size=config.batch_size,
                lease_seconds=config.lease_seconds,
            )
            if not batch:
                break
            batches += 1
            for item in batch:
                counts = report.counts(item.channel)
                try:
                    channel = opened.get(item.channel)
                    if channel is None:
                        channel = opened[item.channel] = open_channel(item.channel, config,
                                                                      outbox)
                    channel.send(item.message)
                except (DeliveryError, ConfigError) as exc:
                    report.causes[(item.channel, str(exc))] += 1
                    delivery_error = exc if isinstance(exc, DeliveryError) else None
                    if mark_failed(store, item, str(exc), now=clock(), config=config,
                                   retry_after=getattr(delivery_error, "retry_after", None),
                                   permanent=getattr(delivery_error, "permanent", False)):
                        counts.dead += 1
                    else:
                        counts.failed += 1
                    continue
                mark_sent(store, item.message.delivery_id, now=clock())
                counts.sent += 1
    finally:
        close_all(c for name, c in opened.items() if channels is None or name not in channels)
    report.pending, report.sending, report.lease_ends = _waiting(store)
    return report


def deliver_due(workspace: Workspace, *, now: datetime | None = None) -> WorkerReport:
    """Send the workspace's due deliveries through the channels its [act] section sets."""
    return run_worker(workspace.store, workspace.config.act, now=now,
                      outbox=workspace.path / OUTBOX_DIR)


FIXES = {
    "email": "check [act] smtp_host, smtp_port and smtp_starttls (and DOORSTEP_SMTP_PASSWORD)",
    "webhook": "check [act] webhook_url, and that the receiver answers 2xx",
    "slack": "check [act] slack_webhook_url",
    "hubspot": "check DOORSTEP_HUBSPOT_TOKEN and [act.crm] hubspot_status_property (a company "
    "property that must exist in HubSpot)",
    "salesforce": "check DOORSTEP_SALESFORCE_TOKEN, [act.crm] salesforce_url and "
    "salesforce_status_field (a custom account field that must exist)",
}


def failure_advice(report: WorkerReport) -> list[str]:
    """One line per (channel, cause) of the failed deliveries, most frequent first, each with
    what to fix; writing files instead of sending is always one way out."""
    lines = []
    for (channel, cause), n in report.causes.most_common():
        fix = FIXES.get(channel, "check its settings in [act]")
        lines.append(f"{n:,} {channel} {'delivery' if n == 1 else 'deliveries'} failed: "
                     f"{cause}; {fix}, or set [act] deliver = \"file\" to write the messages "
                     "into outbox/ in the workspace.")
    return lines
