"""The act stage: route every EQL to an owner, queue the motion's messages, send them, escalate.

One transaction decides and queues everything, so a run either routes a lead and queues its
messages or does neither:

1. every EQL not yet routed goes through the routing rules (warmest first, so capacity goes to
   the warmest leads): it becomes `routed` with an owner, an action and a deadline, or, when no
   rule resolves, a `candidate` with the reason "no motion: ..." (DESIGN invariant 3);
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
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from doorstep.act.channels import check_channels
from doorstep.act.outbox import ASSIGNMENT, ESCALATION, Context, Draft, Templates, enqueue
from doorstep.act.rep_actions import (
    ACCEPTED,
    CANDIDATE,
    EQL,
    INTRO_MADE,
    INTRO_REQUESTED,
    LIFECYCLE,
    OPEN_STATUSES,
    ROUTED,
)
from doorstep.act.worker import WorkerReport, run_worker
from doorstep.config import Config, WarmthBands
from doorstep.qualify.motion import (
    ACTION_LABELS,
    CO_SELL,
    PARTNER_INTRO,
    REP_OUTREACH,
    MotionRouter,
    MotionRules,
    MotionVerdict,
    RepFacts,
    lead_facts,
    motion_rules,
    warmth_band,
)
from doorstep.store.db import hold_stage_lock
from doorstep.store.models import (
    Account,
    Delivery,
    Lead,
    Partner,
    PartnerAccount,
    Rep,
    WarmthAnswer,
)
from doorstep.track.events import Event, bulk_write, record_events, table_of
from doorstep.workspace import Workspace

ACTOR = "doorstep act"
_IN_CHUNK = 5_000
GATE_ORDER = ("overlap", "warmth", "fit", "motion")
# The status at which each action's motion is done; before it, a passed deadline is overdue.
MOTION_DONE = {PARTNER_INTRO: INTRO_MADE, CO_SELL: ACCEPTED, REP_OUTREACH: ACCEPTED}
PARTNER_ACTIONS = (PARTNER_INTRO, CO_SELL)
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
_KNOWN_FACTS = frozenset(
    (*_ACCOUNT_FACTS, *_LEAD_FACTS, *_PATH_FACTS, "account_id", "answer", "warmth_band",
     "partner_manager_id", "partner_name")
)


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
    """An EQL no routing rule could place: it went back to being a candidate."""

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


def naive_utc(moment: datetime | None) -> datetime:
    """`moment` (default: now) as a naive UTC datetime, as the store keeps times."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# --- loading -----------------------------------------------------------------------------


def _load_leads(conn: Connection, with_attributes: bool) -> list[LeadRow]:
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
    if with_attributes:  # JSON costs time to parse; only a rule on an extra column needs it
        columns.append(a.attributes)
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
        if with_attributes:
            account["attributes"] = values[-1]
        rows.append(LeadRow(lead_values, account, path, partner))
    return rows


def _latest_answers(conn: Connection) -> dict[tuple[str, str], str]:
    w = WarmthAnswer
    latest: dict[tuple[str, str], str] = {}
    rows = conn.execute(
        select(w.partner_id, w.partner_account_id, w.answer).order_by(w.answered_at)
    )
    for partner_id, partner_account_id, answer in rows:
        latest[(partner_id, partner_account_id)] = answer
    return latest


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
    routing = config.routing
    names = {n for rule in routing.rules for n in rule.when}
    names |= {n for action in routing.actions for n in action.when}
    leads = _load_leads(conn, with_attributes=bool(names - _KNOWN_FACTS))
    if any(row.lead["status"] == EQL for row in leads):
        answers = _latest_answers(conn)
        for row in leads:
            key = (row.lead["partner_id"], row.lead["partner_account_id"])
            row.path["answer"] = answers.get(key)
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


def _facts(row: LeadRow, rules: MotionRules) -> dict[str, Any]:
    lead = {k: row.lead[k] for k in ("lead_id", "partner_id", "partner_account_id",
                                      "warmth_score", "fit_score")}
    return lead_facts(
        row.account, lead=lead, path=row.path, partner=row.partner, bands=rules.warmth_bands
    )


def _failed_with_motion(failed_gates: str | None) -> str:
    failed = {g for g in (failed_gates or "").split(";") if g} | {"motion"}
    return ";".join(g for g in GATE_ORDER if g in failed)


def route_eqls(
    conn: Connection, world: World, rules: MotionRules, now: datetime, report: ActReport
) -> None:
    """Route every EQL in `world` (warmest first) and write the leads and their events."""
    eqls = [row for row in world.leads if row.lead["status"] == EQL]
    eqls.sort(key=lambda r: (-(r.lead["warmth_score"] or 0.0), r.lead["lead_id"]))
    verdicts = MotionRouter(world.reps, rules).assign(
        [(_facts(row, rules), row.lead["owner_id"]) for row in eqls], world.load, now=now
    )
    routed: list[dict[str, Any]] = []
    unrouted: list[tuple[LeadRow, MotionVerdict]] = []
    events: list[Event] = []
    for row, verdict in zip(eqls, verdicts, strict=True):
        if verdict.owner_id is not None:
            routed.append(_routed(row, verdict, now, report, events))
            world.load[verdict.owner_id] = world.load.get(verdict.owner_id, 0) + 1
        else:
            unrouted.append((row, verdict))
    no_motion = _no_motion_rows(conn, unrouted, now, report, events)
    routed.sort(key=lambda r: r["lead_id"])  # in key order, the B-tree writes stay local
    table = table_of(Lead)
    bulk_write(conn, table, routed, key=("lead_id",))
    bulk_write(conn, table, no_motion, key=("lead_id",))
    record_events(conn, events)


def _routed(
    row: LeadRow, verdict: MotionVerdict, now: datetime, report: ActReport, events: list[Event]
) -> dict[str, Any]:
    lead = row.lead
    assert verdict.owner_id is not None and verdict.due_at is not None and verdict.rule
    # Qualify's provisional deadline stands when it chose the same owner and action.
    keep = lead["owner_id"] == verdict.owner_id and lead["action"] == verdict.action
    due_at = lead["due_at"] if keep and lead["due_at"] is not None else verdict.due_at
    lead.update(status=ROUTED, owner_id=verdict.owner_id, action=verdict.action, due_at=due_at)
    report.routed.append(
        RoutedLead(lead["lead_id"], lead["account_id"], verdict.owner_id, verdict.action, due_at,
                   verdict.rule, verdict.reason)
    )
    detail = {
        "owner_id": verdict.owner_id,
        "action": verdict.action,
        "due_at": due_at.isoformat(),
        "rule": verdict.rule,
        "reason": verdict.reason,
    }
    events.append(Event(lead["lead_id"], ROUTED, ROUTED, ACTOR, now, EQL, detail))
    return {
        "lead_id": lead["lead_id"],
        "status": ROUTED,
        "owner_id": verdict.owner_id,
        "action": verdict.action,
        "due_at": due_at,
        "updated_at": now,
    }


def _no_motion_rows(
    conn: Connection,
    unrouted: list[tuple[LeadRow, MotionVerdict]],
    now: datetime,
    report: ActReport,
    events: list[Event],
) -> list[dict[str, Any]]:
    if not unrouted:
        return []
    ids = [row.lead["lead_id"] for row, _ in unrouted]
    gates: dict[str, Any] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        statement = select(Lead.lead_id, Lead.gates).where(Lead.lead_id.in_(chunk))
        gates.update(conn.execute(statement).all())
    rows = []
    for row, verdict in unrouted:
        lead = row.lead
        failed = _failed_with_motion(lead["failed_gates"])
        verdicts = dict(gates.get(lead["lead_id"]) or {})
        verdicts["motion"] = {
            "passed": False,
            "reason": verdict.reason,
            "owner_id": None,
            "action": verdict.action,
        }
        report.no_motion.append(UnroutedLead(lead["lead_id"], lead["account_id"], verdict.reason))
        events.append(
            Event(lead["lead_id"], "status_changed", CANDIDATE, ACTOR, now, EQL,
                  {"reason": verdict.reason, "failed_gates": failed})
        )
        lead.update(status=CANDIDATE, owner_id=None, action=None, due_at=None)
        rows.append(
            {
                "lead_id": lead["lead_id"],
                "status": CANDIDATE,
                "failed_gates": failed,
                "reason": verdict.reason,
                "gates": verdicts,
                "owner_id": None,
                "action": None,
                "due_at": None,
                "updated_at": now,
            }
        )
    return rows


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
    done = MOTION_DONE.get(lead["action"])
    if lead["due_at"] is None or lead["due_at"] >= now or done is None:
        return False
    status = lead["status"]
    return (
        status in LIFECYCLE
        and LIFECYCLE.index(ROUTED) <= LIFECYCLE.index(status) < LIFECYCLE.index(done)
    )


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


def act(workspace: Workspace, *, now: datetime | None = None, send: bool = True) -> ActReport:
    """Route the EQLs, queue the motions' messages, escalate overdue ones, and (with `send`)
    deliver what is due; running it twice routes and queues nothing twice."""
    moment = naive_utc(now)
    config = workspace.config
    check_channels(config.act)
    rules = motion_rules(config)
    templates = Templates(workspace.path)
    report = ActReport()
    with workspace.store.engine.begin() as conn:
        hold_stage_lock(conn)  # a second act at once waits, then sees these leads routed
        world = load_world(conn, config)
        route_eqls(conn, world, rules, moment, report)
        drafts = assignment_drafts(world, config, report)
        requests, asked = partner_drafts(world, config, report)
        escalations, escalation_events = overdue_motions(world, config, moment, report)
        queued = enqueue(conn, [*drafts, *requests, *escalations], templates, now=moment)
        _request_intros(conn, asked, moment, report)
        record_events(conn, escalation_events)
    report.queued = dict(Counter(d.action for d in queued))
    if send:
        fixed = moment if now is not None else None  # a given `now` fixes the worker's clock
        report.delivery = run_worker(workspace.store, config.act, now=fixed)
    return report
