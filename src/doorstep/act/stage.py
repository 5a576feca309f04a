"""The act stage: route every EQL to an owner, queue the motion's messages, send them, escalate.

One transaction decides and queues everything, so a run either routes a lead and queues its
messages or does neither:

1. every EQL becomes `routed` with the owner, action and deadline its motion gate chose in the
   qualify stage (routing runs there once; act never re-routes nor rewrites a gate). An EQL
   whose owner can no longer take it (made inactive since) stays an EQL, and the report says
   to qualify again;
2. every routed lead's owner is told (`assignment`); every accepted lead whose action involves
   the partner gets the partner's request (`partner_intro`, which moves it to intro_requested,
   or `co_sell`);
3. every motion past its deadline is listed, and escalated once (`escalation`).

Then, with `send`, the worker delivers what is due. Messages are keyed per lead, action,
recipient and channel, so re-running queues nothing twice (DESIGN invariant 6).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from doorstep.act.channels import HUBSPOT, OUTBOX_DIR, SALESFORCE, check_channels
from doorstep.act.outbox import (
    ASSIGNMENT,
    CRM_STATUS,
    ESCALATION,
    Context,
    Draft,
    Templates,
    enqueue,
)
from doorstep.act.worker import WorkerReport, run_worker
from doorstep.config import Config, WarmthBands
from doorstep.lifecycle import (
    ACCEPTED,
    ACTION_LABELS,
    EQL,
    INTRO_REQUESTED,
    OPEN_STATUSES,
    PARTNER_ACTIONS,
    PARTNER_INTRO,
    ROUTED,
    is_overdue,
)
from doorstep.qualify.motion import RepFacts, warmth_band
from doorstep.store.bulk import bulk_write, in_chunks, table_of
from doorstep.store.db import hold_stage_lock
from doorstep.store.events import Event, record_events
from doorstep.store.models import (
    Account,
    Delivery,
    Lead,
    Partner,
    PartnerAccount,
    Rep,
)
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

ACTOR = "doorstep act"
_STATUSES_LOADED = (EQL, ROUTED, ACCEPTED, INTRO_REQUESTED)
_ACCOUNT_FACTS = (
    "name",
    "website",
    "country",
    "industry",
    "employees",
    "annual_revenue",
    "owner_id",
    "territory",
    "is_customer",
)
_LEAD_FACTS = (
    "lead_id",
    "account_id",
    "status",
    "partner_id",
    "partner_account_id",
    "warmth_score",
    "fit_score",
    "owner_id",
    "action",
    "due_at",
    "failed_gates",
)
_PATH_FACTS = (
    "partner_account_name",
    "relationship",
    "partner_owner_email",
    "relationship_strength",
    "contacts_engaged",
)
_PARTNER_FACTS = ("name", "partner_manager_id", "contact_email")
@dataclass(frozen=True)
class RoutedLead:
    """An EQL this run routed: to whom, for which action, due when, by which rule."""

    lead_id: str
    account_id: str
    owner_id: str
    action: str
    due_at: datetime
    rule: str
    reason: str


@dataclass(frozen=True)
class UnroutedLead:
    """An EQL act could not route as qualified: its owner can no longer take it."""

    lead_id: str
    account_id: str
    reason: str


@dataclass(frozen=True)
class OverdueMotion:
    """A motion past its deadline, and to whom it was escalated (None: to nobody yet)."""

    lead_id: str
    owner_id: str | None
    action: str
    status: str
    due_at: datetime
    days_overdue: float
    escalated_to: str | None
    escalated_now: bool


@dataclass
class ActReport:
    """What one act run routed, queued, sent and escalated."""

    routed: list[RoutedLead] = field(default_factory=list)
    no_motion: list[UnroutedLead] = field(default_factory=list)
    queued: dict[str, int] = field(default_factory=dict)
    intro_requested: list[str] = field(default_factory=list)
    overdue: list[OverdueMotion] = field(default_factory=list)
    delivery: WorkerReport | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def escalations(self) -> int:
        return sum(o.escalated_now for o in self.overdue)


@dataclass
class LeadRow:
    """One lead with its account, partner path and partner, as loaded for routing and messages."""

    lead: dict[str, Any]
    account: dict[str, Any]
    path: dict[str, Any]
    partner: dict[str, Any]


@dataclass
class World:
    """Everything act decides on, loaded from the store in a few selects."""

    leads: list[LeadRow]
    reps: dict[str, RepFacts]
    load: dict[str, int]
    escalated: dict[str, str]


# --- loading -----------------------------------------------------------------------------


def _load_leads(conn: Connection) -> list[LeadRow]:
    lead, a, pa, p = Lead, Account, PartnerAccount, Partner
    columns: list[Any] = [
        *(getattr(lead, n) for n in _LEAD_FACTS),
        *(getattr(a, n) for n in _ACCOUNT_FACTS),
        pa.name,
        pa.relationship,
        pa.partner_owner_email,
        pa.relationship_strength,
        pa.contacts_engaged,
        *(getattr(p, n) for n in _PARTNER_FACTS),
    ]
    statement = (
        select(*columns)
        .outerjoin(a, a.account_id == lead.account_id)
        .outerjoin(
            pa,
            (pa.partner_id == lead.partner_id)
            & (pa.partner_account_id == lead.partner_account_id),
        )
        .outerjoin(p, p.partner_id == lead.partner_id)
        .where(lead.status.in_(_STATUSES_LOADED))
        .order_by(lead.lead_id)
    )
    n_lead, n_account, n_path = len(_LEAD_FACTS), len(_ACCOUNT_FACTS), len(_PATH_FACTS)
    rows = []
    for values in conn.execute(statement):
        at = 0
        lead_values = dict(zip(_LEAD_FACTS, values[at : at + n_lead], strict=True))
        at += n_lead
        account = dict(zip(_ACCOUNT_FACTS, values[at : at + n_account], strict=True))
        account["account_id"] = lead_values["account_id"]
        at += n_account
        path = dict(zip(_PATH_FACTS, values[at : at + n_path], strict=True))
        at += n_path
        partner = dict(zip(_PARTNER_FACTS, values[at : at + len(_PARTNER_FACTS)], strict=True))
        partner["partner_id"] = lead_values["partner_id"]
        rows.append(LeadRow(lead_values, account, path, partner))
    return rows


def _load_reps(conn: Connection) -> dict[str, RepFacts]:
    r = Rep
    reps = {}
    rows = conn.execute(
        select(r.rep_id, r.name, r.email, r.territory, r.capacity, r.active, r.attributes)
    )
    for rep_id, name, email, territory, capacity, active, attributes in rows:
        manager = (attributes or {}).get("manager_id")
        manager_id = str(manager).strip() if manager not in (None, "") else None
        reps[rep_id] = RepFacts(rep_id, name, email, territory, capacity, active, manager_id)
    return reps


def load_world(conn: Connection, config: Config) -> World:
    """The leads act works on (EQL to intro requested), reps, their open leads, escalations."""
    leads = _load_leads(conn)
    load = {
        str(owner_id): int(n)
        for owner_id, n in conn.execute(
            select(Lead.owner_id, func.count())
            .where(Lead.status.in_(OPEN_STATUSES), Lead.owner_id.is_not(None))
            .group_by(Lead.owner_id)
        )
    }
    escalated = dict(
        conn.execute(
            select(Delivery.lead_id, func.min(Delivery.recipient))
            .where(Delivery.action == ESCALATION)
            .group_by(Delivery.lead_id)
        ).all()
    )
    return World(leads, _load_reps(conn), load, escalated)


# --- routing -----------------------------------------------------------------------------


def _motion_of(gates: Any) -> dict[str, Any]:
    motion = (gates or {}).get("motion") if isinstance(gates, dict) else None
    return motion if isinstance(motion, dict) else {}


def _stale_owner(owner_id: str | None, reps: Mapping[str, RepFacts]) -> str | None:
    """Why the owner qualify chose can no longer take the lead, or None when it still can."""
    if not owner_id:
        return "it has no owner"
    rep = reps.get(owner_id)
    if rep is None:
        return None if "@" in owner_id else f"its owner {owner_id} is no longer one of our reps"
    return f"its owner {owner_id} is inactive" if rep.active is False else None


def route_eqls(conn: Connection, world: World, now: datetime, report: ActReport) -> None:
    """Route every EQL in `world` as its motion gate decided, and write the leads and events."""
    eqls = [row for row in world.leads if row.lead["status"] == EQL]
    eqls.sort(key=lambda r: (-(r.lead["warmth_score"] or 0.0), r.lead["lead_id"]))
    gates: dict[str, Any] = {}
    for chunk in in_chunks([row.lead["lead_id"] for row in eqls]):
        statement = select(Lead.lead_id, Lead.gates).where(Lead.lead_id.in_(list(chunk)))
        gates.update(conn.execute(statement).all())
    routed: list[dict[str, Any]] = []
    events: list[Event] = []
    for row in eqls:
        lead = row.lead
        stale = _stale_owner(lead["owner_id"], world.reps)
        if stale is None and (lead["action"] is None or lead["due_at"] is None):
            stale = "it has no action or deadline"
        if stale is not None:
            reason = f"not routed: {stale}; run `doorstep qualify` to route it again"
            report.no_motion.append(UnroutedLead(lead["lead_id"], lead["account_id"], reason))
            continue
        motion = _motion_of(gates.get(lead["lead_id"]))
        routed.append(_routed(row, motion, now, report, events))
        world.load[lead["owner_id"]] = world.load.get(lead["owner_id"], 0) + 1
    routed.sort(key=lambda r: r["lead_id"])  # in key order, the B-tree writes stay local
    bulk_write(conn, table_of(Lead), routed, key=("lead_id",))
    record_events(conn, events)


def _routed(
    row: LeadRow, motion: dict[str, Any], now: datetime, report: ActReport, events: list[Event]
) -> dict[str, Any]:
    lead = row.lead
    rule = str(motion.get("how") or "")
    reason = str(motion.get("reason") or "")
    lead.update(status=ROUTED)
    report.routed.append(
        RoutedLead(lead["lead_id"], lead["account_id"], lead["owner_id"], lead["action"],
                   lead["due_at"], rule, reason)
    )
    detail = {
        "owner_id": lead["owner_id"],
        "action": lead["action"],
        "due_at": lead["due_at"].isoformat(),
        "rule": rule,
        "reason": reason,
    }
    events.append(Event(lead["lead_id"], ROUTED, ROUTED, ACTOR, now, EQL, detail))
    return {"lead_id": lead["lead_id"], "status": ROUTED, "updated_at": now}


# --- messages ----------------------------------------------------------------------------


def _person(rep: RepFacts | None, fallback: str | None) -> dict[str, Any]:
    if rep is not None:
        return {"rep_id": rep.rep_id, "name": rep.name or rep.rep_id, "email": rep.email}
    return {"rep_id": None, "name": fallback, "email": fallback}


def _address(person_id: str | None, reps: Mapping[str, RepFacts]) -> str | None:
    """The email of a rep, or the id itself when it is an email (a shared queue)."""
    if not person_id:
        return None
    rep = reps.get(person_id)
    if rep is not None:
        return rep.email or None
    return person_id if "@" in person_id else None


def message_context(
    row: LeadRow,
    reps: Mapping[str, RepFacts],
    recipient: str,
    bands: WarmthBands,
    **extra: Any,
) -> dict[str, Any]:
    """What a template can use: lead, account, partner, partner_account, owner, recipient."""
    lead, account, path, partner = row.lead, row.account, row.path, row.partner
    owner_id = lead["owner_id"]
    due_at: datetime | None = lead["due_at"]
    return {
        "lead": {
            "lead_id": lead["lead_id"],
            "account_id": lead["account_id"],
            "action": lead["action"],
            "action_label": ACTION_LABELS.get(lead["action"], lead["action"]),
            "due_at": due_at,
            "due_date": due_at.date().isoformat() if due_at else None,
            "warmth_score": lead["warmth_score"],
            "warmth_band": warmth_band(lead["warmth_score"], bands),
            "fit_score": lead["fit_score"],
        },
        "account": {k: account.get(k) for k in ("account_id", *_ACCOUNT_FACTS)},
        "partner": {
            "partner_id": lead["partner_id"],
            "name": partner.get("name") or lead["partner_id"],
            "contact_email": partner.get("contact_email"),
        },
        "partner_account": {
            "partner_account_id": lead["partner_account_id"],
            "name": path.get("partner_account_name"),
            "relationship": path.get("relationship"),
            "partner_owner_email": path.get("partner_owner_email"),
        },
        "owner": _person(reps.get(owner_id or ""), owner_id),
        "recipient": recipient,
        **extra,
    }


def _drafts(
    row: LeadRow, action: str, recipient: str, channels: Iterable[str], context: Context
) -> list[Draft]:
    return [Draft(row.lead["lead_id"], action, recipient, c, context) for c in channels]


def assignment_drafts(
    world: World, config: Config, report: ActReport
) -> list[Draft]:
    """An `assignment` message to the owner of every routed lead, on each rep channel."""
    drafts = []
    bands = config.routing.warmth_bands
    for row in world.leads:
        if row.lead["status"] != ROUTED:
            continue
        recipient = _address(row.lead["owner_id"], world.reps)
        if recipient is None:
            report.problems.append(
                f"lead {row.lead['lead_id']}: owner {row.lead['owner_id']} has no email, "
                "so no assignment message"
            )
            continue
        context = partial(message_context, row, world.reps, recipient, bands)
        drafts += _drafts(row, ASSIGNMENT, recipient, config.act.channels.rep, context)
    return drafts


def partner_drafts(
    world: World, config: Config, report: ActReport
) -> tuple[list[Draft], list[LeadRow]]:
    """The partner's request for every accepted lead whose action needs the partner.

    Returns the drafts and the partner_intro leads they move to intro_requested.
    """
    drafts: list[Draft] = []
    asked: list[LeadRow] = []
    channels = config.act.channels.partner
    if not channels:
        return drafts, asked
    for row in world.leads:
        action = row.lead["action"]
        if row.lead["status"] != ACCEPTED or action not in PARTNER_ACTIONS:
            continue
        recipient = row.path.get("partner_owner_email") or row.partner.get("contact_email")
        if not recipient:
            report.problems.append(
                f"lead {row.lead['lead_id']}: partner {row.lead['partner_id']} has no "
                "partner_owner_email or contact_email to send the request to"
            )
            continue
        context = partial(message_context, row, world.reps, recipient, config.routing.warmth_bands)
        drafts += _drafts(row, action, recipient, channels, context)
        if action == PARTNER_INTRO:
            asked.append(row)
    return drafts, asked


def _is_overdue(row: LeadRow, now: datetime) -> bool:
    lead = row.lead
    return is_overdue(lead["status"], lead["action"], lead["due_at"], now)


def _escalation_target(
    row: LeadRow, reps: Mapping[str, RepFacts]
) -> tuple[str | None, RepFacts | None]:
    """The owner's manager (reps column manager_id), else the partner's manager: address, rep."""
    owner = reps.get(row.lead["owner_id"] or "")
    for person_id in (owner.manager_id if owner else None, row.partner.get("partner_manager_id")):
        address = _address(person_id, reps)
        if address is not None:
            return address, reps.get(person_id or "")
    return None, None


def overdue_motions(
    world: World, config: Config, now: datetime, report: ActReport
) -> tuple[list[Draft], list[Event]]:
    """List every motion past its deadline; escalate the ones not escalated before, once."""
    drafts: list[Draft] = []
    events: list[Event] = []
    for row in world.leads:
        if not _is_overdue(row, now):
            continue
        lead = row.lead
        days = round((now - lead["due_at"]).total_seconds() / 86_400, 1)
        before = world.escalated.get(lead["lead_id"])
        target, manager = (None, None) if before else _escalation_target(row, world.reps)
        channels = config.act.channels.escalation
        escalate_now = bool(config.act.escalate and target and channels)
        if config.act.escalate and not before and not target:
            report.problems.append(
                f"lead {lead['lead_id']} is overdue but its owner has no manager_id and its "
                "partner no partner manager with an email: nobody to escalate to"
            )
        if escalate_now and target is not None:
            context = message_context(
                row, world.reps, target, config.routing.warmth_bands,
                manager=_person(manager, target), days_overdue=days, status=lead["status"],
            )
            drafts += _drafts(row, ESCALATION, target, channels, context)
            events.append(
                Event(lead["lead_id"], "escalated", lead["status"], ACTOR, now, lead["status"],
                      {"to": target, "due_at": lead["due_at"].isoformat(),
                       "days_overdue": days})
            )
        report.overdue.append(
            OverdueMotion(lead["lead_id"], lead["owner_id"], lead["action"], lead["status"],
                          lead["due_at"], days, before or (target if escalate_now else None),
                          escalate_now)
        )
    return drafts, events


def _request_intros(
    conn: Connection, asked: list[LeadRow], now: datetime, report: ActReport
) -> None:
    rows, events = [], []
    for row in asked:
        lead_id = row.lead["lead_id"]
        rows.append({"lead_id": lead_id, "status": INTRO_REQUESTED, "updated_at": now})
        events.append(Event(lead_id, INTRO_REQUESTED, INTRO_REQUESTED, ACTOR, now, ACCEPTED,
                            {"partner_id": row.lead["partner_id"]}))
        row.lead["status"] = INTRO_REQUESTED
        report.intro_requested.append(lead_id)
    bulk_write(conn, table_of(Lead), rows, key=("lead_id",))
    record_events(conn, events)


def crm_status_drafts(conn: Connection, config: Config) -> list[Draft]:
    """The EQL status in the CRM after a lead's assignment was written there: one update per
    later status that `[act.crm] status_values` names (rejected, expired, won ...)."""
    values = config.act.crm.status_values
    crm = [c for c in config.act.channels.rep if c in (HUBSPOT, SALESFORCE)]
    if not crm or not values:
        return []
    rows = conn.execute(
        select(Lead.lead_id, Lead.account_id, Lead.status, Delivery.channel, Account.name)
        .join(Delivery, Delivery.lead_id == Lead.lead_id)
        .join(Account, Account.account_id == Lead.account_id, isouter=True)
        .where(Delivery.action == ASSIGNMENT, Delivery.channel.in_(crm),
               Lead.status.in_(list(values)))
    ).all()
    return [
        Draft(lead_id, CRM_STATUS, f"status:{status}", channel, {
            "lead": {"lead_id": lead_id, "account_id": account_id, "status": status},
            "account": {"account_id": account_id, "name": name},
            "status_value": values[status],
        })
        for lead_id, account_id, status, channel, name in rows
    ]


def act(workspace: Workspace, *, now: datetime | None = None, send: bool = True) -> ActReport:
    """Route the EQLs, queue the motions' messages, escalate overdue ones, and (with `send`)
    deliver what is due; running it twice routes and queues nothing twice."""
    moment = naive_utc(now)
    config = workspace.config
    check_channels(config.act)
    templates = Templates(workspace.path)
    report = ActReport()
    with workspace.store.engine.begin() as conn:
        hold_stage_lock(conn)  # a second act at once waits, then sees these leads routed
        world = load_world(conn, config)
        route_eqls(conn, world, moment, report)
        drafts = assignment_drafts(world, config, report)
        requests, asked = partner_drafts(world, config, report)
        escalations, escalation_events = overdue_motions(world, config, moment, report)
        statuses = crm_status_drafts(conn, config)
        queued = enqueue(conn, [*drafts, *requests, *escalations, *statuses], templates,
                         now=moment)
        _request_intros(conn, asked, moment, report)
        record_events(conn, escalation_events)
    report.queued = dict(Counter(d.action for d in queued))
    if send:
        fixed = moment if now is not None else None  # a given `now` fixes the worker's clock
        report.delivery = run_worker(workspace.store, config.act, now=fixed,
                                     outbox=workspace.path / OUTBOX_DIR)
    return report
