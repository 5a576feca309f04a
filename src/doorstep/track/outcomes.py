"""Move each lead along the rest of its life: opportunity, won or lost, or expired.

After a rep routes a lead, the CRM says what became of it. An opportunity on the lead's account
created at or after the lead and within the measurement window (or one naming the lead in its
`lead_id`) belongs to it, as in the measurement: the lead becomes `opportunity`, then `won` when
one of its opportunities is won, or `lost` when all of them closed lost. A routed lead nobody
accepted by its deadline plus `act.expire_after_days` expires, and its unsent messages are
dropped. Leads only move forward; each move is an event by "doorstep track". Re-running with
nothing new changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from doorstep.act.outbox import cancel_pending
from doorstep.lifecycle import EXPIRED, LOST, OPEN_STATUSES, OPPORTUNITY, ROUTED, WON
from doorstep.store.db import hold_stage_lock
from doorstep.store.events import Event, record_events
from doorstep.store.models import Lead, Opportunity
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

ACTOR = "doorstep track"
# Where the CRM's pipeline can take a lead from: the leads an owner is working.
TRACKED = OPEN_STATUSES


@dataclass
class TrackReport:
    """How many leads moved to each status, and how many were looked at."""

    tracked: int = 0
    moved: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Opportunity:
    opportunity_id: str
    created_at: datetime
    is_won: bool | None
    closed_at: datetime | None


def _outcome(opportunities: list[_Opportunity]) -> str:
    """The status a lead's opportunities give it: won, lost (all closed lost) or opportunity."""
    if any(o.is_won for o in opportunities):
        return WON
    if all(o.is_won is False for o in opportunities):
        return LOST
    return OPPORTUNITY


def track_outcomes(workspace: Workspace, *, now: datetime | None = None) -> TrackReport:
    """Bring every routed lead's status up to date with the CRM's opportunities and deadlines."""
    moment = naive_utc(now)
    window = timedelta(days=workspace.config.measure.window_days)
    grace_days = workspace.config.act.expire_after_days
    report = TrackReport()
    with workspace.store.engine.begin() as conn:
        hold_stage_lock(conn)
        leads = conn.execute(
            select(Lead.lead_id, Lead.account_id, Lead.status, Lead.created_at, Lead.due_at)
            .where(Lead.status.in_(TRACKED))
            .order_by(Lead.lead_id)
        ).all()
        report.tracked = len(leads)
        by_account: dict[str, list[_Opportunity]] = defaultdict(list)
        by_lead: dict[str, list[_Opportunity]] = defaultdict(list)
        ids = {lead.lead_id for lead in leads}
        accounts = {lead.account_id for lead in leads}
        o = Opportunity
        for row in conn.execute(
            select(o.opportunity_id, o.account_id, o.created_at, o.is_won, o.closed_at, o.lead_id)
        ):
            opp = _Opportunity(row.opportunity_id, row.created_at, row.is_won, row.closed_at)
            if row.lead_id in ids:
                by_lead[row.lead_id].append(opp)
            elif row.account_id in accounts:
                by_account[row.account_id].append(opp)
        events: list[Event] = []
        expired: list[str] = []
        for lead in leads:
            mine = by_lead.get(lead.lead_id, []) + [
                opp for opp in by_account.get(lead.account_id, [])
                if lead.created_at <= opp.created_at <= lead.created_at + window
            ]
            to_status: str | None = None
            detail: dict[str, Any] = {}
            if mine:
                to_status = _outcome(mine)
                detail = {"opportunities": sorted(opp.opportunity_id for opp in mine)}
            elif (lead.status == ROUTED and grace_days > 0 and lead.due_at is not None
                  and moment > lead.due_at + timedelta(days=grace_days)):
                to_status = EXPIRED
                detail = {"due_at": lead.due_at.isoformat(), "expire_after_days": grace_days}
            if to_status is None or to_status == lead.status:
                continue
            moved = conn.execute(
                update(Lead)
                .where(Lead.lead_id == lead.lead_id, Lead.status == lead.status)
                .values(status=to_status, updated_at=moment)
            ).rowcount
            if moved != 1:  # an owner moved it meanwhile; the next run looks again
                continue
            events.append(Event(lead.lead_id, to_status, to_status, ACTOR, moment, lead.status,
                                detail))
            report.moved[to_status] = report.moved.get(to_status, 0) + 1
            if to_status == EXPIRED:
                expired.append(lead.lead_id)
        record_events(conn, events)
        cancel_pending(conn, expired, reason="lead expired: nobody took it on by its deadline")
    return report
