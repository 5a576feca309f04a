"""The qualify stage: every account a partner shares with us through the four gates, into leads.

Load everything with a few selects, decide every lead in Python with the pure gates, then write
only what changed: new and changed leads, one event per status or path change, and warmth
checks to ask partners. Re-running with the same inputs writes nothing.
"""

from __future__ import annotations

import gc
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, cast, func, select, union

from doorstep.config import Config
from doorstep.lifecycle import (
    CANDIDATE,
    EQL,
    OPEN_STATUSES,
    QUALIFY_STATUSES,
    WARMTH_REQUESTED,
    FunnelStep,
    funnel_steps,
)
from doorstep.qualify.fit import (
    ACCOUNT_COLUMNS,
    AccountFacts,
    IcpRule,
    icp_rules,
    learn_fit,
    learned_rule,
    memo_key,
)
from doorstep.qualify.gates import (
    GateResult,
    fit_verdict,
    lead_verdict,
    overlap_verdict,
    path_rank,
    unasked_warmth,
    warmth_verdict,
)
from doorstep.qualify.motion import (
    KNOWN_FACTS,
    MotionRouter,
    PartnerFacts,
    RepFacts,
    motion_rules,
    routing_input,
    rule_fact_names,
)
from doorstep.qualify.warmth import (
    PartnerPath,
    TrackRecord,
    WarmthScore,
    track_records,
    warmth_score,
)
from doorstep.store.bulk import RawJSON, bulk_write, json_text, table_of
from doorstep.store.db import hold_stage_lock
from doorstep.store.events import Event, record_events
from doorstep.store.models import (
    Account,
    Lead,
    LeadEvent,
    Opportunity,
    Overlap,
    Partner,
    PartnerAccount,
    Rep,
    WarmthRequest,
)
from doorstep.store.queries import LatestAnswer, latest_answers
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

ACTOR = "doorstep qualify"
REQUEST_OPEN = "open"
REQUEST_ANSWERED = "answered"

_JSON_FIELDS = frozenset({"other_partners", "gates"})
_LEAD_FIELDS = (
    "account_id",
    "status",
    "partner_id",
    "partner_account_id",
    "other_partners",
    "failed_gates",
    "reason",
    "gates",
    "warmth_score",
    "fit_score",
    "owner_id",
    "action",
    "due_at",
)


# A lead as the store holds it, its JSON columns as stored text.
PriorLead = dict[str, Any]


def lead_id_for(account_id: str) -> str:
    """The stable id of the lead on one of our accounts."""
    return f"L-{account_id}"


@dataclass
class Evidence:
    """Everything the gates need, loaded from the store: per account, per path, per rep."""

    accounts: dict[str, AccountFacts]
    paths: dict[str, list[PartnerPath]]
    reps: dict[str, RepFacts]
    track_records: dict[str, TrackRecord]
    assigned: dict[str, int] = field(default_factory=dict)
    prior: dict[str, PriorLead] = field(default_factory=dict)
    past_qualify: set[str] = field(default_factory=set)
    learned: dict[str, float] | None = None  # learned win probability per account, when on
    partners: dict[str, PartnerFacts] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WarmthAsk:
    """A warmth check to put to a partner about one of its accounts."""

    partner_id: str
    partner_account_id: str
    account_id: str
    lead_id: str
    warmth_score: float


@dataclass
class Decisions:
    """The lead every qualifying account should have, and the warmth checks to ask for."""

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    asks: list[WarmthAsk] = field(default_factory=list)
    excluded_customers: int = 0


@dataclass
class QualifyReport:
    """What qualifying decided and what it changed in the store."""

    leads: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    created: int = 0
    changed: int = 0
    # of the changed leads, those whose only change is warmth recency moving with the clock
    clock_only: int = 0
    unchanged: int = 0
    events: int = 0
    warmth_requests: int = 0
    warmth_answered: int = 0
    excluded_customers: int = 0
    past_qualify: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    """One account's verdicts short of motion, which waits until every lead's order is known."""

    account: AccountFacts
    ranked: list[tuple[PartnerPath, WarmthScore]]
    overlap: GateResult
    warmth: GateResult
    fit: GateResult
    fit_json: str

    @property
    def path(self) -> PartnerPath | None:
        return self.ranked[0][0] if self.ranked else None

    @property
    def score(self) -> float:
        return float(self.warmth.detail.get("score", 0.0))


def _evaluate(
    account: AccountFacts,
    paths: list[PartnerPath],
    evidence: Evidence,
    config: Config,
    fit: Callable[[AccountFacts], tuple[GateResult, str]],
    now: datetime,
) -> _Pending:
    warmth = config.warmth
    sharing = len({p.partner_id for p in paths})
    scored = [
        (
            path,
            warmth_score(
                path,
                now=now,
                max_activity_age_days=warmth.max_activity_age_days,
                partners_on_account=sharing,
                track_record=evidence.track_records.get(path.partner_id),
            ),
        )
        for path in paths
    ]
    ranked = sorted(scored, key=lambda ps: path_rank(ps[0], ps[1].total, warmth))
    chosen = warmth_verdict(*ranked[0], warmth) if ranked else warmth_verdict(None, None, warmth)
    return _Pending(
        account,
        ranked,
        overlap_verdict(account, paths, include_customers=config.qualify.include_customers),
        chosen,
        *fit(account),
    )


def _memoised_fit(rules: list[IcpRule]) -> Callable[[AccountFacts], tuple[GateResult, str]]:
    """fit_verdict and its JSON, once per distinct combination of the values the rules read."""
    memo: dict[tuple[Any, ...], tuple[GateResult, str]] = {}

    def judged(account: AccountFacts) -> tuple[GateResult, str]:
        verdict = fit_verdict(account, rules)
        return verdict, json.dumps(verdict.as_json())

    def fit(account: AccountFacts) -> tuple[GateResult, str]:
        key = tuple(memo_key(rule.value_of(account)) for rule in rules)
        try:
            known = memo.get(key)
        except TypeError:  # an unhashable attribute value: just compute it
            return judged(account)
        if known is None:
            known = memo[key] = judged(account)
        return known

    return fit


def _due_at(
    prior: PriorLead | None, verdict: GateResult, path: PartnerPath | None, now: datetime
) -> datetime:
    d = verdict.detail
    same = prior is not None and (
        prior["status"] == EQL
        and prior["owner_id"] == d["owner_id"]
        and prior["action"] == d["action"]
        and prior["partner_id"] == (path.partner_id if path else None)
        and prior["partner_account_id"] == (path.partner_account_id if path else None)
        and prior["due_at"] is not None
    )
    # The deadline runs from when the lead became this EQL, not from every re-run.
    if same and prior is not None:
        return prior["due_at"]  # type: ignore[no-any-return]
    return now + timedelta(days=int(d["sla_days"]))


def decide_leads(evidence: Evidence, config: Config, now: datetime) -> Decisions:
    """Run every account through the four gates; pure in its inputs.

    An account gets a lead when a partner shares it (our customers only with
    qualify.include_customers); a lead qualify decided before is always re-decided, so a
    vanished overlap fails the overlap gate rather than leaving a stale EQL. Leads that moved
    past qualify (routed and later) are left alone. Rep capacity goes to the warmest leads
    that pass overlap, warmth and fit first.
    """
    decisions = Decisions()
    rules = icp_rules(config.icp)
    minimum = config.icp.learned_min_probability
    if minimum is not None and evidence.learned is not None:
        rules.append(learned_rule(minimum, evidence.learned))
    fit = _memoised_fit(rules)
    pending: list[_Pending] = []
    for account_id in sorted(evidence.paths.keys() | evidence.prior.keys()):
        if account_id in evidence.past_qualify:
            continue
        account = evidence.accounts.get(account_id) or AccountFacts(account_id)
        paths = evidence.paths.get(account_id, [])
        if account_id not in evidence.prior:
            if account.is_customer and not config.qualify.include_customers:
                decisions.excluded_customers += 1
                continue
        pending.append(_evaluate(account, paths, evidence, config, fit, now))

    loads = Counter(evidence.assigned)  # open leads per rep, counting this run's assignments
    router = MotionRouter(evidence.reps, motion_rules(config))
    ready = [p for p in pending if p.overlap.passed and p.warmth.passed and p.fit.passed]
    ready.sort(key=lambda p: (-p.score, p.account.account_id))
    waiting = [p for p in pending if not (p.overlap.passed and p.warmth.passed and p.fit.passed)]
    for item, consumes in [(p, True) for p in ready] + [(p, False) for p in waiting]:
        lead_id = lead_id_for(item.account.account_id)
        prior = evidence.prior.get(item.account.account_id)
        motion = routed_motion(
            item,
            router,
            loads,
            evidence.partners,
            now=now,
            previous_owner_id=prior["owner_id"] if prior else None,
        )
        if consumes and motion.passed:
            loads[str(motion.detail["owner_id"])] += 1
        # A partner is asked only about a lead that passes every other gate: one that could
        # become an EQL on its answer. Otherwise the warmth reason says why nobody was asked.
        blocking = [g.gate for g in (item.overlap, item.fit, motion) if not g.passed]
        if blocking and item.warmth.detail.get("awaiting"):
            item.warmth = unasked_warmth(item.warmth, blocking)
        decisions.leads[item.account.account_id] = _lead_values(item, motion, prior, lead_id, now)
        if not blocking:
            decisions.asks += [
                WarmthAsk(
                    path.partner_id,
                    path.partner_account_id,
                    item.account.account_id,
                    lead_id,
                    score.total,
                )
                for path, score in item.ranked
                if path.answer is None and score.total >= config.warmth.min_score
            ]
    return decisions


def routed_motion(
    item: _Pending,
    router: MotionRouter,
    loads: Mapping[str, int],
    partners: Mapping[str, PartnerFacts],
    *,
    now: datetime,
    previous_owner_id: str | None = None,
) -> GateResult:
    """The motion gate: the routing rules resolve an owner, an action and a deadline.

    This is the only place a lead is routed; the act stage takes the verdict as it is.
    """
    facts = routing_input(
        item.account,
        item.path,
        partners,
        warmth_score=item.score if item.path else None,
        fit_score=item.fit.detail.get("fit_score"),
    ).facts(router.rules.warmth_bands)
    verdict = router.resolve(facts, loads, now=now, previous_owner_id=previous_owner_id)
    days = int(round((verdict.due_at - now).total_seconds() / 86400)) if verdict.due_at else 0
    detail: dict[str, Any] = {
        "owner_id": verdict.owner_id,
        "how": verdict.rule,
        "action": verdict.action,
        "sla_days": days,
    }
    return GateResult("motion", verdict.resolved, verdict.reason, detail)


def _gates_json(item: _Pending, motion: GateResult) -> RawJSON:
    """The lead's `gates` column as JSON text, reusing the fit verdict's text, which many
    leads share: the same text json.dumps gives for {gate: verdict.as_json()}."""
    overlap, warmth = json.dumps(item.overlap.as_json()), json.dumps(item.warmth.as_json())
    return RawJSON(
        f'{{"overlap": {overlap}, "warmth": {warmth}, "fit": {item.fit_json}, '
        f'"motion": {json.dumps(motion.as_json())}}}'
    )


def _lead_values(
    item: _Pending, motion: GateResult, prior: PriorLead | None, lead_id: str, now: datetime
) -> dict[str, Any]:
    results = (item.overlap, item.warmth, item.fit, motion)
    verdict = lead_verdict(results)
    path = item.path
    eql = verdict.status == EQL
    return {
        "lead_id": lead_id,
        "account_id": item.account.account_id,
        "status": verdict.status,
        "partner_id": path.partner_id if path else None,
        "partner_account_id": path.partner_account_id if path else None,
        "other_partners": [
            {
                "partner_id": p.partner_id,
                "partner_account_id": p.partner_account_id,
                "relationship": p.relationship,
                "warmth_score": v.total,
                "answer": p.answer,
            }
            for p, v in item.ranked[1:]
        ],
        "failed_gates": verdict.failed_gates,
        "reason": verdict.reason,
        "gates": _gates_json(item, motion),
        "warmth_score": item.warmth.detail.get("score"),
        "fit_score": item.fit.detail["fit_score"],
        "owner_id": motion.detail["owner_id"] if eql else None,
        "action": motion.detail["action"] if eql else None,
        "due_at": _due_at(prior, motion, path, now) if eql else None,
    }


# --- loading -----------------------------------------------------------------------------


def _load_paths(
    conn: Connection, answers: Mapping[tuple[str, str], LatestAnswer]
) -> dict[str, list[PartnerPath]]:
    o, pa = Overlap, PartnerAccount
    rows = conn.execute(
        select(
            o.account_id,
            o.partner_id,
            o.partner_account_id,
            o.relationship,
            pa.name,
            pa.partner_owner_email,
            pa.last_activity_at,
            pa.relationship_strength,
            pa.contacts_engaged,
        ).outerjoin(
            pa,
            (pa.partner_id == o.partner_id) & (pa.partner_account_id == o.partner_account_id),
        )
    ).all()  # no ORDER BY: paths are ranked per account anyway, and sorting costs seconds
    paths: dict[str, list[PartnerPath]] = {}
    for account_id, pid, paid, rel, name, owner, last, strength, contacts in rows:
        latest = answers.get((pid, paid))
        answer = latest.answer if latest else None
        answered_at = latest.answered_at if latest else None
        paths.setdefault(account_id, []).append(
            PartnerPath(pid, paid, rel, name, owner, last, strength, contacts, answer, answered_at)
        )
    return paths


def _load_accounts(conn: Connection, wanted: Any, with_attributes: bool) -> dict[str, AccountFacts]:
    a = Account
    columns: list[Any] = [
        a.account_id,
        a.name,
        a.country,
        a.industry,
        a.employees,
        a.annual_revenue,
        a.owner_id,
        a.territory,
        a.is_customer,
        a.website,
    ]
    if with_attributes:  # JSON costs time to parse; only an extra ICP rule needs it
        columns.append(a.attributes)
    rows = conn.execute(select(*columns).where(a.account_id.in_(wanted))).all()
    return {r[0]: AccountFacts(*r) for r in rows}


def _learned_fit(
    conn: Connection, config: Config, accounts: Mapping[str, AccountFacts]
) -> tuple[dict[str, float] | None, str]:
    """Learn win probabilities from accounts with a closed opportunity, and score `accounts`."""
    o = Opportunity
    closed = select(o.account_id, o.is_won).where(o.closed_at.is_not(None), o.is_won.is_not(None))
    won: dict[str, bool] = {}
    for account_id, is_won in conn.execute(closed):
        won[account_id] = won.get(account_id, False) or bool(is_won)
    history = _load_accounts(conn, closed.with_only_columns(o.account_id), False)
    labelled = sorted(history)
    model, note = learn_fit(
        [history[k] for k in labelled],
        [won[k] for k in labelled],
        min_history=config.icp.learned_min_history,
    )
    if model is None:
        return None, note
    return model.probabilities(list(accounts.values())), note


def _load_prior(conn: Connection) -> tuple[dict[str, PriorLead], set[str], dict[str, int]]:
    lead = Lead
    # JSON stays text: parsing it would cost more than comparing it as text.
    columns: list[Any] = [
        cast(getattr(lead, n), Text) if n in _JSON_FIELDS else getattr(lead, n)
        for n in _LEAD_FIELDS
    ]
    prior: dict[str, PriorLead] = {}
    past: set[str] = set()
    for row in conn.execute(select(lead.lead_id, *columns)).all():
        values = dict(zip(("lead_id", *_LEAD_FIELDS), row, strict=True))
        if values["status"] in QUALIFY_STATUSES:
            prior[values["account_id"]] = values
        else:
            past.add(values["account_id"])
    assigned = {
        str(owner_id): int(n)
        for owner_id, n in conn.execute(
            select(lead.owner_id, func.count())
            .where(lead.status.in_(OPEN_STATUSES), lead.owner_id.is_not(None))
            .group_by(lead.owner_id)
        )
    }
    return prior, past, assigned


def _settled_intros(conn: Connection) -> list[tuple[str, bool]]:
    """(partner_id, made) per intro we asked a partner for that is settled: the partner made it,
    or the rep rejected the lead for want of a contact. Open requests do not count yet."""
    asked: dict[str, str] = {}
    made: set[str] = set()
    for lead_id, kind, detail in conn.execute(
        select(LeadEvent.lead_id, LeadEvent.kind, LeadEvent.detail).where(
            LeadEvent.kind.in_(("intro_requested", "intro_made"))
        )
    ):
        if kind == "intro_made":
            made.add(lead_id)
        elif isinstance(detail, dict) and detail.get("partner_id"):
            asked.setdefault(lead_id, str(detail["partner_id"]))
    if not asked:
        return []
    no_contact = {
        lead_id
        for lead_id, reason in conn.execute(
            select(Lead.lead_id, Lead.reason).where(Lead.status == "rejected")
        )
        if reason and reason.startswith("rejected: no_contact")
    }
    return [
        (partner_id, lead_id in made)
        for lead_id, partner_id in sorted(asked.items())
        if lead_id in made or lead_id in no_contact
    ]


def load_evidence(
    conn: Connection, config: Config
) -> tuple[Evidence, dict[tuple[str, str], LatestAnswer]]:
    """Everything the gates need from the store, in a few selects; also the latest answers."""
    answers = latest_answers(conn)
    needs_attributes = any(k not in ACCOUNT_COLUMNS for k in config.icp.extra) or bool(
        rule_fact_names(config) - KNOWN_FACTS
    )
    reps = {
        r.rep_id: RepFacts(r.rep_id, territory=r.territory, capacity=r.capacity, active=r.active)
        for r in conn.execute(select(Rep.rep_id, Rep.territory, Rep.capacity, Rep.active))
    }
    prior, past, assigned = _load_prior(conn)
    wanted = union(select(Overlap.account_id), select(Lead.account_id)).subquery()
    accounts = _load_accounts(conn, select(wanted.c.account_id), needs_attributes)
    learned, notes = None, []
    if config.icp.learned_min_probability is not None:
        learned, note = _learned_fit(conn, config, accounts)
        notes.append(note)
    p = Partner
    evidence = Evidence(
        partners={
            pid: PartnerFacts(pid, name, manager, email)
            for pid, name, manager, email in conn.execute(
                select(p.partner_id, p.name, p.partner_manager_id, p.contact_email)
            )
        },
        accounts=accounts,
        paths=_load_paths(conn, answers),
        reps=reps,
        track_records=track_records(
            ((pid, latest.answer) for (pid, _), latest in answers.items()), _settled_intros(conn)
        ),
        assigned=assigned,
        prior=prior,
        past_qualify=past,
        learned=learned,
        notes=notes,
    )
    return evidence, answers


# --- writing -----------------------------------------------------------------------------


def _changed(lead: Mapping[str, Any], prior: PriorLead) -> bool:
    """Whether a lead differs from the stored one."""
    if any(lead[n] != prior[n] for n in _LEAD_FIELDS if n not in _JSON_FIELDS):
        return True
    # Both sides are text as json.dumps writes it, so equal text means equal values.
    return any(json_text(lead[n]) != prior[n] for n in _JSON_FIELDS)


_WARMTH_FIGURE = re.compile(r"warmth \d+(?:\.\d+)?")  # a score quoted in a reason


def _clock_free(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A lead's fields without what moves with the clock alone: warmth recency, and the warmth
    scores made from it (the lead's, its gate's and its other partners')."""
    out = {n: fields[n] for n in _LEAD_FIELDS if n not in _JSON_FIELDS and n != "warmth_score"}
    out["reason"] = _WARMTH_FIGURE.sub("warmth #", str(out.get("reason") or ""))
    gates = fields["gates"]
    gates = json.loads(gates) if isinstance(gates, str) else dict(gates or {})
    warmth = dict(gates.get("warmth") or {})
    warmth.pop("score", None)
    warmth["reason"] = _WARMTH_FIGURE.sub("warmth #", str(warmth.get("reason") or ""))
    warmth["parts"] = {k: v for k, v in dict(warmth.get("parts") or {}).items() if k != "recency"}
    out["gates"] = {**gates, "warmth": warmth}
    others = fields["other_partners"]
    others = json.loads(others) if isinstance(others, str) else list(others or [])
    out["other_partners"] = [{k: v for k, v in o.items() if k != "warmth_score"}
                             for o in others if isinstance(o, dict)]
    return out


def only_the_clock_moved(lead: Mapping[str, Any], prior: PriorLead) -> bool:
    """Whether a changed lead differs from the stored one by warmth recency alone."""
    return _clock_free(lead) == _clock_free(prior)


def _event_for(lead: Mapping[str, Any], prior: PriorLead | None, now: datetime) -> Event | None:
    detail = {
        "reason": lead["reason"],
        "failed_gates": lead["failed_gates"],
        "partner_id": lead["partner_id"],
        "partner_account_id": lead["partner_account_id"],
    }
    if prior is None:
        return Event(lead["lead_id"], "created", lead["status"], ACTOR, now, None, detail)
    moved = (prior["partner_id"], prior["partner_account_id"]) != (
        lead["partner_id"],
        lead["partner_account_id"],
    )
    if prior["status"] == lead["status"] and not moved:
        return None
    if moved:
        detail["from_partner_id"] = prior["partner_id"]
        detail["from_partner_account_id"] = prior["partner_account_id"]
    kind = "status_changed" if prior["status"] != lead["status"] else "path_changed"
    return Event(lead["lead_id"], kind, lead["status"], ACTOR, now, prior["status"], detail)


def _write_leads(
    conn: Connection, decisions: Decisions, prior: Mapping[str, PriorLead], now: datetime
) -> tuple[int, int, int, int, list[Event]]:
    """Write new and changed leads; returns (new, changed, of which by the clock alone,
    unchanged, events)."""
    new, changed, events = [], [], []
    clock_only = 0
    for account_id, lead in decisions.leads.items():
        before = prior.get(account_id)
        if before is None:
            new.append({**lead, "created_at": now, "updated_at": now})
        elif _changed(lead, before):
            changed.append({**lead, "updated_at": now})
            clock_only += only_the_clock_moved(lead, before)
        event = _event_for(lead, before, now)
        if event is not None:
            events.append(event)
    table = table_of(Lead)
    bulk_write(conn, table, new)
    bulk_write(conn, table, changed, key=("lead_id",))
    record_events(conn, events)
    unchanged = len(decisions.leads) - len(new) - len(changed)
    return len(new), len(changed), clock_only, unchanged, events


def _write_requests(
    conn: Connection,
    asks: Iterable[WarmthAsk],
    answers: Mapping[tuple[str, str], LatestAnswer],
    now: datetime,
) -> tuple[int, int]:
    w = WarmthRequest
    existing = {
        (pid, paid): status
        for pid, paid, status in conn.execute(select(w.partner_id, w.partner_account_id, w.status))
    }
    new = {}
    for ask in asks:
        key = (ask.partner_id, ask.partner_account_id)
        if key in existing or key in new:
            continue
        new[key] = {
            "partner_id": ask.partner_id,
            "partner_account_id": ask.partner_account_id,
            "account_id": ask.account_id,
            "lead_id": ask.lead_id,
            "warmth_score": ask.warmth_score,
            "status": REQUEST_OPEN,
            "requested_at": now,
            "answered_at": None,
        }
    answered = [
        {
            "partner_id": pid,
            "partner_account_id": paid,
            "status": REQUEST_ANSWERED,
            "answered_at": answers[(pid, paid)].answered_at,
        }
        for (pid, paid), status in existing.items()
        if status == REQUEST_OPEN and (pid, paid) in answers
    ]
    table = table_of(WarmthRequest)
    bulk_write(conn, table, list(new.values()))
    bulk_write(conn, table, answered, key=("partner_id", "partner_account_id"))
    return len(new), len(answered)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the stage builds millions of acyclic objects, and
    full collections over them cost more than the work itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def qualify_leads(workspace: Workspace, *, now: datetime | None = None) -> QualifyReport:
    """Run every overlapping account through the four gates and bring the leads up to date.

    One lead per account (id "L-" + account_id), on the warmest qualifying partner path. Only
    a change of a lead's status or path writes an event; qualifying twice changes nothing.
    """
    moment = naive_utc(now)
    config = workspace.config
    with _collector_paused(), workspace.store.engine.begin() as conn:
        hold_stage_lock(conn)
        evidence, answers = load_evidence(conn, config)
        decisions = decide_leads(evidence, config, moment)
        created, changed, clock_only, unchanged, events = _write_leads(
            conn, decisions, evidence.prior, moment)
        asked, answered = _write_requests(conn, decisions.asks, answers, moment)
    statuses = Counter(lead["status"] for lead in decisions.leads.values())
    return QualifyReport(
        leads=len(decisions.leads),
        by_status={s: statuses[s] for s in (EQL, WARMTH_REQUESTED, CANDIDATE) if statuses[s]},
        created=created,
        changed=changed,
        clock_only=clock_only,
        unchanged=unchanged,
        events=len(events),
        warmth_requests=asked,
        warmth_answered=answered,
        excluded_customers=decisions.excluded_customers,
        past_qualify=len(evidence.past_qualify),
        notes=evidence.notes,
    )


def funnel(workspace: Workspace) -> list[FunnelStep]:
    """Leads still in after each gate, then EQLs, with the share lost (see `lifecycle`)."""
    with workspace.store.engine.connect() as conn:
        groups = conn.execute(
            select(Lead.status, Lead.failed_gates, func.count()).group_by(
                Lead.status, Lead.failed_gates
            )
        ).all()
    return funnel_steps((status, failed, int(n)) for status, failed, n in groups)
