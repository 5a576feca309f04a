"""The partner digest: the leads a partner surfaced, what became of them, and its scorecard.

A partner surfaced a lead when the lead's chosen partner path is that partner and the lead got
past qualifying (it became an EQL). What became of it comes from three places: the lead's status
(routed, accepted, rejected, ...), its events (when the intro was asked for and made), and the
opportunities the measure stage's attribution rules give it (opportunity, won, lost). Nothing
here ever reads another partner's leads: every query is filtered by the one partner asked about.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, Any

import pyarrow as pa
from sqlalchemy import Connection, and_, exists, func, or_, select, tuple_

from doorstep.act.rep_actions import REJECT_REASONS
from doorstep.config import Config
from doorstep.lifecycle import (
    EQL,
    EXPIRED,
    INTRO_MADE,
    INTRO_REQUESTED,
    LOST,
    OPPORTUNITY,
    PRE_EQL,
    REJECTED,
    WON,
    is_overdue,
)
from doorstep.measure import format as fmt
from doorstep.measure.attribution import lead_outcomes
from doorstep.measure.model import DOORSTEP, Conversion, Report
from doorstep.measure.report import build_report
from doorstep.qualify.warmth import POSITIVE_ANSWERS
from doorstep.share.policy import COUNTS, OVERLAPS, sees_all, visible_clause
from doorstep.store.bulk import in_chunks
from doorstep.store.export import csv_cell
from doorstep.store.models import (
    Lead,
    LeadEvent,
    Opportunity,
    Partner,
    PartnerAccount,
    SourceLead,
    WarmthRequest,
)
from doorstep.store.queries import latest_answer
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

# Leads still inside qualify: a partner did not surface these (yet). Defined by the lifecycle.
NOT_SURFACED = PRE_EQL


def share_amounts(config: Config) -> bool:
    """Whether partners may see opportunity amounts: `[web] share_amounts`, false by default."""
    web = getattr(config, "web", None)
    return bool(getattr(web, "share_amounts", False))


@dataclass(frozen=True)
class LeadOpportunity:
    """The opportunities attributed to one lead: how many, the first, won or lost, the amount."""

    opportunities: int
    first_at: datetime | None
    won: bool
    lost: bool
    pipeline: float


@dataclass(frozen=True)
class SurfacedLead:
    """One lead a partner surfaced, as the partner may see it: its own account name, never ours."""

    lead_id: str
    partner_id: str
    partner_account_id: str | None
    partner_account_name: str | None
    relationship: str | None
    action: str | None
    status: str
    outcome: str
    surfaced_at: datetime
    updated_at: datetime
    intro_requested_at: datetime | None
    intro_made_at: datetime | None
    opportunity_at: datetime | None
    rejection_reason: str | None
    amount: float | None


@dataclass(frozen=True)
class ScoreLine:
    """One count on a scorecard and the count it is a share of: a rate always stands beside it."""

    name: str
    label: str
    count: int
    base: int
    base_label: str

    @property
    def rate(self) -> float | None:
        """`count` as a share of `base`; None when the base is empty."""
        return self.count / self.base if self.base else None


@dataclass(frozen=True)
class IntroOutcomes:
    """The partner's introductions: asked for, made, still waiting (and overdue), dropped."""

    requested: int
    made: int
    waiting: int
    overdue: int
    dropped: int


@dataclass(frozen=True)
class Scorecard:
    """A partner's scorecard: every count beside its rate, and its EQLs' conversion vs MQLs."""

    partner_id: str
    partner_name: str
    lines: list[ScoreLine]
    intros: IntroOutcomes
    conversion: Conversion | None
    mql_rate: float | None
    pipeline: float | None = None

    def line(self, name: str) -> ScoreLine:
        """The line called `name`."""
        return next(line for line in self.lines if line.name == name)


@dataclass
class Digest:
    """Everything one partner hears back: its surfaced leads with outcomes, intros, scorecard."""

    partner_id: str
    partner_name: str
    contact_email: str | None
    period: str
    generated_at: datetime
    leads: list[SurfacedLead]
    scorecard: Scorecard
    share_amounts: bool
    changed_in_period: list[SurfacedLead] = field(default_factory=list)


# --- reading one partner's (or every partner's) surfaced leads --------------------------------


def _surfaced_query(partner_id: str | None, visible: Any = None) -> Any:
    lead, pa_ = Lead, PartnerAccount
    query = (
        select(
            lead.lead_id,
            lead.partner_id,
            lead.partner_account_id,
            lead.account_id,
            lead.status,
            lead.action,
            lead.due_at,
            lead.created_at,
            lead.updated_at,
            pa_.name.label("partner_account_name"),
            pa_.relationship,
        )
        .join(
            pa_,
            and_(
                pa_.partner_id == lead.partner_id,
                pa_.partner_account_id == lead.partner_account_id,
            ),
            isouter=True,
        )
        .where(lead.status.not_in(NOT_SURFACED), lead.partner_id.is_not(None))
    )
    if partner_id is not None:
        query = query.where(lead.partner_id == partner_id)
    if visible is not None:
        query = query.where(visible)
    return query


def _events_of(
    conn: Connection, lead_ids: Sequence[str] | None, partner_id: str | None
) -> dict[str, dict[str, Any]]:
    """Per lead: when it became an EQL, its intro request and intro, and why it was rejected."""
    e = LeadEvent
    kinds = (INTRO_REQUESTED, INTRO_MADE, REJECTED)
    relevant = or_(e.kind.in_(kinds), e.to_status == EQL)
    columns = (e.lead_id, e.kind, e.to_status, e.at, e.detail)
    queries: list[Any] = []
    if lead_ids is not None:
        queries = [
            select(*columns).where(e.lead_id.in_(list(chunk)), relevant)
            for chunk in in_chunks(lead_ids)
        ]
    else:
        mine = select(Lead.lead_id).where(Lead.status.not_in(NOT_SURFACED))
        if partner_id is not None:
            mine = mine.where(Lead.partner_id == partner_id)
        queries = [select(*columns).where(e.lead_id.in_(mine), relevant)]
    found: dict[str, dict[str, Any]] = {}
    for query in queries:
        for lead_id, kind, to_status, at, detail in conn.execute(query.order_by(e.at, e.event_id)):
            facts = found.setdefault(lead_id, {})
            if to_status == EQL:
                facts.setdefault("eql_at", at)
            if kind in (INTRO_REQUESTED, INTRO_MADE):
                facts.setdefault(kind, at)
            if kind == REJECTED:  # the latest rejection wins; only its reason category is kept
                reason = (detail or {}).get("reason")
                facts[REJECTED] = reason if reason in REJECT_REASONS else "other"
    return found


def _opportunity_rows(conn: Connection, account_ids: Sequence[str], lead_ids: set[str]) -> pa.Table:
    """Opportunities on these accounts or naming these leads, as attribution wants them.

    An opportunity naming one of our imported leads (an MQL, ...) belongs to that lead alone,
    exactly as in the measure report, so it is left out here.
    """
    o = Opportunity
    imported = select(SourceLead.lead_id).where(SourceLead.lead_id == o.lead_id)
    rows: list[Any] = []
    for chunk in in_chunks(account_ids):
        rows += conn.execute(
            select(o.opportunity_id, o.account_id, o.created_at, o.amount, o.closed_at,
                   o.is_won, o.lead_id)
            .where(o.account_id.in_(list(chunk)), ~exists(imported))
        ).all()
    named = [lid for lid in lead_ids if lid]
    seen = {r[0] for r in rows}
    for chunk in in_chunks(sorted(named)):
        rows += [
            r
            for r in conn.execute(
                select(o.opportunity_id, o.account_id, o.created_at, o.amount, o.closed_at,
                       o.is_won, o.lead_id).where(o.lead_id.in_(list(chunk)))
            ).all()
            if r[0] not in seen
        ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    return pa.table(
        {
            "opportunity_id": pa.array(columns[0], pa.string()),
            "account_id": pa.array(columns[1], pa.string()),
            "created_at": pa.array(columns[2], pa.timestamp("us")),
            "amount": pa.array(columns[3], pa.float64()),
            "closed_at": pa.array(columns[4], pa.timestamp("us")),
            "is_won": pa.array(columns[5], pa.bool_()),
            "lead_id": pa.array(columns[6], pa.string()),
        }
    )


def attributed_opportunities(
    conn: Connection,
    leads: Sequence[tuple[str, str, datetime]],
    *,
    window_days: int,
    now: datetime,
) -> dict[str, LeadOpportunity]:
    """The opportunities the measure stage's attribution gives each (lead_id, account_id,
    surfaced_at); only leads with at least one opportunity are returned."""
    if not leads:
        return {}
    lead_table = pa.table(
        {
            "lead_key": pa.array([lead_id for lead_id, _, _ in leads], pa.string()),
            "lead_id": pa.array([lead_id for lead_id, _, _ in leads], pa.string()),
            "lead_type": pa.array([EQL] * len(leads), pa.string()),
            "account_id": pa.array([account for _, account, _ in leads], pa.string()),
            "created_at": pa.array([at for _, _, at in leads], pa.timestamp("us")),
        }
    )
    opportunities = _opportunity_rows(
        conn, sorted({account for _, account, _ in leads}), {lead_id for lead_id, _, _ in leads}
    )
    if opportunities.num_rows == 0:
        return {}
    outcomes, _ = lead_outcomes(lead_table, opportunities, window_days=window_days, now=now)
    found: dict[str, LeadOpportunity] = {}
    for row in outcomes.to_pylist():
        if not row["opportunities"]:
            continue
        found[row["lead_id"]] = LeadOpportunity(
            opportunities=int(row["opportunities"]),
            first_at=row["first_opportunity_at"],
            won=bool(row["won"]),
            lost=bool(row["decided"]) and not bool(row["won"]),
            pipeline=float(row["pipeline"] or 0.0),
        )
    return found


def outcome_of(status: str, opportunity: LeadOpportunity | None) -> str:
    """What became of a surfaced lead: won, lost, opportunity, else its lifecycle status."""
    if status == WON or (opportunity is not None and opportunity.won):
        return WON
    if status == LOST or (opportunity is not None and opportunity.lost):
        return LOST
    if status == OPPORTUNITY or opportunity is not None:
        return OPPORTUNITY
    return status


def _surfaced_lead(
    row: Any, events: Mapping[str, Any], opportunity: LeadOpportunity | None, amounts: bool
) -> SurfacedLead:
    return SurfacedLead(
        lead_id=row.lead_id,
        partner_id=row.partner_id,
        partner_account_id=row.partner_account_id,
        partner_account_name=row.partner_account_name,
        relationship=row.relationship,
        action=row.action,
        status=row.status,
        outcome=outcome_of(row.status, opportunity),
        surfaced_at=events.get("eql_at") or row.created_at,
        updated_at=row.updated_at,
        intro_requested_at=events.get(INTRO_REQUESTED),
        intro_made_at=events.get(INTRO_MADE),
        opportunity_at=opportunity.first_at if opportunity else None,
        rejection_reason=events.get(REJECTED) if row.status == REJECTED else None,
        amount=opportunity.pipeline if opportunity is not None and amounts else None,
    )


def partner_sees(conn: Connection, config: Config, partner_id: str, floor: str,
                 column: Any = Lead.account_id) -> Any:
    """The condition a partner-facing read of this partner adds: its sharing level in force."""
    return visible_clause(conn, config, partner_id, column, floor)


def _load_surfaced(
    workspace: Workspace, partner_id: str | None, now: datetime, amounts: bool,
    floor: str | None = None,
) -> tuple[list[SurfacedLead], dict[str, LeadOpportunity], list[Any]]:
    """Every surfaced lead of one partner (or of all), with events and attributed opportunities;
    with `floor`, only those the partner may see at that sharing level or above."""
    with workspace.store.engine.connect() as conn:
        visible = (partner_sees(conn, workspace.config, partner_id, floor)
                   if partner_id is not None and floor is not None else None)
        rows = list(conn.execute(_surfaced_query(partner_id, visible).order_by(Lead.lead_id)))
        events = _events_of(conn, None, partner_id)
        keys = [
            (r.lead_id, r.account_id, events.get(r.lead_id, {}).get("eql_at") or r.created_at)
            for r in rows
        ]
        opportunities = attributed_opportunities(
            conn, keys, window_days=workspace.config.measure.window_days, now=now
        )
    leads = [
        _surfaced_lead(r, events.get(r.lead_id, {}), opportunities.get(r.lead_id), amounts)
        for r in rows
    ]
    return leads, opportunities, rows


def surfaced_leads_page(
    conn: Connection,
    partner_id: str,
    *,
    opportunities: Mapping[str, LeadOpportunity],
    amounts: bool,
    before: tuple[datetime, str] | None = None,
    offset: int = 0,
    limit: int = 50,
    visible: Any = None,
) -> list[SurfacedLead]:
    """One page of a partner's surfaced leads, most recently changed first (index-backed).

    `before` (updated_at, lead_id) of the last lead of the page before pages at any depth;
    `opportunities` are the attributed opportunities computed beforehand (see `scorecards`);
    `visible` is the partner's `partner_sees` condition.
    """
    query = _surfaced_query(partner_id, visible)
    if before is not None:
        query = query.where(tuple_(Lead.updated_at, Lead.lead_id) < tuple_(*before))
    rows = list(
        conn.execute(
            query.order_by(Lead.updated_at.desc(), Lead.lead_id.desc()).offset(offset).limit(limit)
        )
    )
    events = _events_of(conn, [r.lead_id for r in rows], partner_id)
    return [
        _surfaced_lead(r, events.get(r.lead_id, {}), opportunities.get(r.lead_id), amounts)
        for r in rows
    ]


def surfaced_lead(
    conn: Connection,
    partner_id: str,
    lead_id: str,
    *,
    opportunities: Mapping[str, LeadOpportunity],
    amounts: bool,
    visible: Any = None,
) -> SurfacedLead | None:
    """One lead this partner surfaced and may see; None when it is not one."""
    row = conn.execute(_surfaced_query(partner_id, visible).where(Lead.lead_id == lead_id)
                       ).first()
    if row is None:
        return None
    events = _events_of(conn, [lead_id], partner_id).get(lead_id, {})
    return _surfaced_lead(row, events, opportunities.get(lead_id), amounts)


# --- the scorecard ---------------------------------------------------------------------------


def _warmth_counts(
    conn: Connection, partner_id: str | None, visible: Any = None
) -> dict[str, tuple[int, int, int]]:
    """Per partner: warmth checks asked, answered, and answered strong or some."""
    w = WarmthRequest
    latest = latest_answer("answer", w.partner_id, w.partner_account_id)
    query = select(w.partner_id, latest.label("answer"))
    if partner_id is not None:
        query = query.where(w.partner_id == partner_id)
    if visible is not None:
        query = query.where(visible)
    counts: dict[str, list[int]] = {}
    for pid, answer in conn.execute(query):
        c = counts.setdefault(pid, [0, 0, 0])
        c[0] += 1
        c[1] += answer is not None
        c[2] += (answer or "").lower() in POSITIVE_ANSWERS
    return {pid: (c[0], c[1], c[2]) for pid, c in counts.items()}


def _shared_counts(
    conn: Connection, partner_id: str | None, visible: Any = None
) -> dict[str, int]:
    """Per partner: our leads (accounts) on its path, surfaced or not."""
    query = select(Lead.partner_id, func.count()).where(Lead.partner_id.is_not(None))
    if partner_id is not None:
        query = query.where(Lead.partner_id == partner_id)
    if visible is not None:
        query = query.where(visible)
    return {str(pid): int(n) for pid, n in conn.execute(query.group_by(Lead.partner_id))}


def partner_conversion(report: Report | None, partner_id: str) -> Conversion | None:
    """The measured conversion of the EQLs doorstep surfaced through this partner, vs MQLs:
    the measure report's per-partner row, found by its partner_id field."""
    if report is None or "partner" not in report.breakdowns:
        return None
    for row in report.breakdowns["partner"].rows:
        if row.lead_type == EQL and row.origin == DOORSTEP and row.partner_id == partner_id:
            return row
    return None


def build_scorecard(
    partner_id: str,
    partner_name: str,
    leads: Sequence[SurfacedLead],
    *,
    shared: int,
    warmth: tuple[int, int, int],
    report: Report | None,
    now: datetime,
    due: Mapping[str, datetime | None] | None = None,
    pipeline: float | None = None,
) -> Scorecard:
    """A partner's scorecard from its surfaced leads: each count beside what it is a share of."""
    status = Counter(lead.status for lead in leads)
    outcome = Counter(lead.outcome for lead in leads)
    eqls = len(leads)
    routed = eqls - status[EQL]
    requested = sum(lead.intro_requested_at is not None for lead in leads)
    made = sum(lead.intro_made_at is not None for lead in leads)
    opportunity = outcome[OPPORTUNITY] + outcome[WON] + outcome[LOST]
    asked, answered, positive = warmth
    waiting = [lead for lead in leads if lead.status == INTRO_REQUESTED]
    due_at = due or {}
    overdue = sum(
        is_overdue(lead.status, lead.action, due_at.get(lead.lead_id), now) for lead in waiting
    )
    dropped = sum(
        1 for lead in leads if lead.intro_requested_at and lead.intro_made_at is None
        and lead.status in (REJECTED, EXPIRED)
    )
    lines = [
        ScoreLine("eql", "EQLs surfaced", eqls, shared, "of our accounts on your path"),
        ScoreLine("routed", "Routed to a rep", routed, eqls, "of EQLs"),
        ScoreLine("intro_requested", "Intro requested", requested, routed, "of routed"),
        # Of routed, not of requested: a partner may introduce us before we ask.
        ScoreLine("intro_made", "Intro made", made, routed, "of routed"),
        ScoreLine("opportunity", "Became an opportunity", opportunity, eqls, "of EQLs"),
        ScoreLine("won", "Won", outcome[WON], opportunity, "of opportunities"),
        ScoreLine("lost", "Lost", outcome[LOST], opportunity, "of opportunities"),
        ScoreLine("rejected", "Turned down by our rep", status[REJECTED], routed, "of routed"),
        ScoreLine("answered", "Warmth checks answered", answered, asked, "of checks asked"),
        ScoreLine("warm", "Answered warm (strong or some)", positive, answered, "of answers"),
    ]
    mql = report.mql if report is not None else None
    return Scorecard(
        partner_id=partner_id,
        partner_name=partner_name,
        lines=lines,
        intros=IntroOutcomes(requested, made, len(waiting), overdue, dropped),
        conversion=partner_conversion(report, partner_id),
        mql_rate=mql.rate if mql is not None else None,
        pipeline=pipeline,
    )


def _partners(conn: Connection, partner_id: str | None) -> dict[str, tuple[str, str | None]]:
    query = select(Partner.partner_id, Partner.name, Partner.contact_email)
    if partner_id is not None:
        query = query.where(Partner.partner_id == partner_id)
    return {pid: (name or pid, email) for pid, name, email in conn.execute(query)}


def scorecards(
    workspace: Workspace, *, report: Report | None, now: datetime | None = None
) -> tuple[dict[str, Scorecard], dict[str, LeadOpportunity]]:
    """Every partner's scorecard in one pass, and the attributed opportunities by lead id."""
    moment = naive_utc(now)
    amounts = share_amounts(workspace.config)
    leads, opportunities, rows = _load_surfaced(workspace, None, moment, True)
    with workspace.store.engine.connect() as conn:
        partners = _partners(conn, None)
        shared = _shared_counts(conn, None)
        warmth = _warmth_counts(conn, None)
    due = {r.lead_id: r.due_at for r in rows}
    by_partner: dict[str, list[SurfacedLead]] = {}
    for lead in leads:
        by_partner.setdefault(lead.partner_id, []).append(lead)
    cards = {}
    for pid in sorted(set(partners) | set(by_partner) | set(shared)):
        mine = by_partner.get(pid, [])
        cards[pid] = build_scorecard(
            pid,
            partners.get(pid, (pid, None))[0],
            mine,
            shared=shared.get(pid, 0),
            warmth=warmth.get(pid, (0, 0, 0)),
            report=report,
            now=moment,
            due=due,
            pipeline=sum(lead.amount or 0.0 for lead in mine) if amounts else None,
        )
    return cards, opportunities


class UnknownPartner(LookupError):
    """No partner with this id in the workspace."""


def partner_digest(
    workspace: Workspace,
    partner_id: str,
    *,
    report: Report | None = None,
    now: datetime | None = None,
    period: str | None = None,
    amounts: bool | None = None,
) -> Digest:
    """The leads this partner surfaced, what became of them, its intros and scorecard.

    `report` (the measure report) gives the EQL conversion vs MQLs; it is built when not given.
    Amounts are left out unless `amounts` (default: `[web] share_amounts`) says otherwise.
    """
    moment = naive_utc(now)
    shown = share_amounts(workspace.config) if amounts is None else amounts
    config = workspace.config
    with workspace.store.engine.connect() as conn:
        partner = _partners(conn, partner_id).get(partner_id)
        if partner is None:
            raise UnknownPartner(f"there is no partner {partner_id} in this workspace.")
        # What the partner may count (populations at `counts` or above) and see (`overlaps`).
        counted = partner_sees(conn, config, partner_id, COUNTS)
        restricted = not sees_all(conn, config, partner_id, COUNTS)
        shared = _shared_counts(conn, partner_id, counted).get(partner_id, 0)
        warmth = _warmth_counts(
            conn, partner_id, partner_sees(conn, config, partner_id, COUNTS,
                                           WarmthRequest.account_id)
        ).get(partner_id, (0, 0, 0))
    leads, _, rows = _load_surfaced(workspace, partner_id, moment, shown, COUNTS)
    with workspace.store.engine.connect() as conn:
        seen = {r.lead_id for r in conn.execute(_surfaced_query(
            partner_id, partner_sees(conn, config, partner_id, OVERLAPS)))}
    if report is None:
        report = build_report(workspace, now=moment)
    label = period or period_of(moment)
    card = build_scorecard(
        partner_id,
        partner[0],
        leads,
        shared=shared,
        warmth=warmth,
        report=report,
        now=moment,
        due={r.lead_id: r.due_at for r in rows},
        pipeline=sum(lead.amount or 0.0 for lead in leads) if shown else None,
    )
    if restricted:  # the measured rate would draw on leads the partner may not count
        card = replace(card, conversion=None)
    # Records only where the level in force is `overlaps` or above; counts hold the rest.
    leads = [lead for lead in leads if lead.lead_id in seen]
    leads.sort(key=lambda lead: (lead.updated_at, lead.lead_id), reverse=True)
    start = period_start(label)
    return Digest(
        partner_id=partner_id,
        partner_name=partner[0],
        contact_email=partner[1],
        period=label,
        generated_at=moment,
        leads=leads,
        scorecard=card,
        share_amounts=shown,
        changed_in_period=[lead for lead in leads if start is None or lead.updated_at >= start],
    )


def period_of(moment: datetime) -> str:
    """The digest period a moment falls in: its calendar month, as YYYY-MM."""
    return moment.strftime("%Y-%m")


def period_start(period: str) -> datetime | None:
    """The first moment of a YYYY-MM period; None for a period of another form."""
    try:
        return datetime.strptime(period, "%Y-%m")
    except ValueError:
        return None


# --- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "partner_id",
    "lead_id",
    "partner_account_id",
    "partner_account_name",
    "relationship",
    "action",
    "status",
    "outcome",
    "surfaced_at",
    "intro_requested_at",
    "intro_made_at",
    "opportunity_at",
    "rejection_reason",
)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return csv_cell(value)


def write_digest_csv(digest: Digest, out: IO[str]) -> int:
    """Write the digest's leads as CSV (amounts only when shared); returns the rows written."""
    return write_digests_csv([digest], out)


def write_digests_csv(digests: Sequence[Digest], out: IO[str]) -> int:
    """Write the leads of several digests as one CSV; amounts only when every one shares them."""
    amounts = bool(digests) and all(d.share_amounts for d in digests)
    columns = [*CSV_COLUMNS, "amount"] if amounts else list(CSV_COLUMNS)
    writer = csv.writer(out)
    writer.writerow(columns)
    rows = 0
    for digest in digests:
        for lead in digest.leads:
            writer.writerow([_cell(getattr(lead, c)) for c in columns])
            rows += 1
    return rows


# --- words ---------------------------------------------------------------------------------------

OUTCOME_LABELS = {
    EQL: "EQL, being routed",
    "routed": "with our rep",
    "accepted": "accepted by our rep",
    INTRO_REQUESTED: "intro requested from you",
    INTRO_MADE: "intro made",
    OPPORTUNITY: "opportunity open",
    WON: "won",
    LOST: "lost",
    REJECTED: "turned down by our rep",
    EXPIRED: "expired",
}


def conversion_text(conversion: Conversion | None, mql_rate: float | None) -> str:
    """The partner's EQLs' measured conversion with its interval, beside the MQL rate."""
    mql = f"MQLs convert at {fmt.pct(mql_rate)}"
    if conversion is None or not conversion.measured:
        early = fmt.too_early(conversion) if conversion else "too early: none measured yet"
        return f"{early}; {mql}"
    return (
        f"EQLs converted at {fmt.rate_text(conversion)}, "
        f"{fmt.ratio_vs_mql(conversion.rate_ratio_vs_mql)}; {mql}"
    )
