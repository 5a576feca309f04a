"""Partner digests out through the act stage's outbox: one message per partner, period and channel.

The digest's idempotency key is the outbox's own key over ("digest:<partner>:<period>",
"partner_digest", recipient, channel), so running `doorstep feedback` twice in a period queues
nothing twice, and the outbox worker delivers it like every other message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select

from doorstep.act.outbox import Draft, Templates, enqueue
from doorstep.act.worker import WorkerReport, deliver_due
from doorstep.feedback.digest import (
    OUTCOME_LABELS,
    Digest,
    conversion_text,
    partner_digest,
    period_of,
)
from doorstep.measure.format import pct
from doorstep.measure.report import Report, build_report
from doorstep.store.models import Partner
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

DIGEST = "partner_digest"
EMAIL_LEADS = 50  # the email lists at most this many changed leads; the CSV has them all


class DigestTemplates(Templates):
    """The act stage's templates, then the feedback stage's own (partner_digest.j2)."""

    def __init__(self, workspace: Path | None = None) -> None:
        super().__init__(workspace)
        own = jinja2.PackageLoader("doorstep.feedback", "templates")
        base = self.environment.loader
        loaders = [base, own] if base is not None else [own]
        self.environment.loader = jinja2.ChoiceLoader(loaders)


def digest_key(partner_id: str, period: str) -> str:
    """The outbox's lead slot for a digest: one per partner and period."""
    return f"digest:{partner_id}:{period}"


def _money(value: float | None) -> str | None:
    return None if value is None else f"{value:,.0f}"


def digest_context(digest: Digest) -> dict[str, Any]:
    """What partner_digest.j2 can use, as plain JSON-ready values."""
    card = digest.scorecard
    changed = digest.changed_in_period
    return {
        "partner": {
            "partner_id": digest.partner_id,
            "name": digest.partner_name,
            "contact_email": digest.contact_email,
        },
        "period": digest.period,
        "generated_date": digest.generated_at.date().isoformat(),
        "scorecard": [
            {
                "name": line.name,
                "label": line.label,
                "count": line.count,
                "base": line.base,
                "base_label": line.base_label,
                "rate": pct(line.rate),
            }
            for line in card.lines
        ],
        "conversion": conversion_text(card.conversion, card.mql_rate),
        "intros": {
            "requested": card.intros.requested,
            "made": card.intros.made,
            "waiting": card.intros.waiting,
            "overdue": card.intros.overdue,
            "dropped": card.intros.dropped,
        },
        "pipeline": _money(card.pipeline) if digest.share_amounts else None,
        "changed_count": len(changed),
        "changed": [
            {
                "lead_id": lead.lead_id,
                "partner_account_id": lead.partner_account_id,
                "partner_account_name": lead.partner_account_name,
                "outcome": lead.outcome,
                "outcome_label": OUTCOME_LABELS.get(lead.outcome, lead.outcome),
                "rejection_reason": lead.rejection_reason,
                "amount": _money(lead.amount) if digest.share_amounts else None,
            }
            for lead in changed[:EMAIL_LEADS]
        ],
    }


@dataclass
class FeedbackReport:
    """What one feedback run built, queued and (with send) delivered."""

    period: str
    digests: list[Digest] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delivery: WorkerReport | None = None


def build_digests(
    workspace: Workspace,
    *,
    partner_ids: Sequence[str] | None = None,
    period: str | None = None,
    now: datetime | None = None,
    report: Report | None = None,
) -> list[Digest]:
    """Each partner's digest for the period (None: every partner), measured once for all."""
    moment = naive_utc(now)
    label = period or period_of(moment)
    if partner_ids is None:
        with workspace.store.engine.connect() as conn:
            partner_ids = list(
                conn.execute(select(Partner.partner_id).order_by(Partner.partner_id)).scalars()
            )
    measured = report if report is not None else build_report(workspace, now=moment)
    return [
        partner_digest(workspace, partner_id, report=measured, now=moment, period=label)
        for partner_id in partner_ids
    ]


def queue_digests(
    workspace: Workspace,
    *,
    partner_ids: Sequence[str] | None = None,
    period: str | None = None,
    now: datetime | None = None,
    send: bool = False,
    report: Report | None = None,
    digests: Sequence[Digest] | None = None,
) -> FeedbackReport:
    """Queue each partner's digest to the partner's contact, once per partner and period.

    `digests` already built are queued as they are; else they are built for `partner_ids`
    (None: every partner). With `send` the outbox is delivered right after.
    """
    moment = naive_utc(now)
    if digests is None:
        digests = build_digests(workspace, partner_ids=partner_ids, period=period, now=moment,
                                report=report)
    result = FeedbackReport(period=period or period_of(moment), digests=list(digests))
    templates = DigestTemplates(workspace.path)
    channels = workspace.config.act.channels.partner
    drafts: list[tuple[str, Draft]] = []
    for digest in digests:
        if not digest.contact_email:
            result.problems.append(
                f"partner {digest.partner_id} has no contact_email, so no digest was queued"
            )
            continue
        context = digest_context(digest)
        key = digest_key(digest.partner_id, digest.period)
        drafts += [
            (digest.partner_id, Draft(key, DIGEST, digest.contact_email, channel, context))
            for channel in channels
        ]
    with workspace.store.engine.begin() as conn:
        queued = enqueue(conn, [d for _, d in drafts], templates, now=moment)
    new = {d.idempotency_key for d in queued}
    for partner_id, draft in drafts:
        bucket = result.queued if draft.idempotency_key in new else result.already_queued
        if partner_id not in bucket:
            bucket.append(partner_id)
    if send:
        result.delivery = deliver_due(workspace, now=now)
    return result
