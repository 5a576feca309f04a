"""The web app's reads: one page of leads, overlaps or overdue motions at a time, by an index.

Every query here takes a limit and reads through an index whose order is the page's order, so a
page costs the same at a thousand leads as at a million; nothing loads a whole table.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, and_, false, func, or_, select

from doorstep.lifecycle import QUEUE_STATUSES, is_overdue, late_actions
from doorstep.store.models import (
    Account,
    Lead,
    Overlap,
    Partner,
    PartnerAccount,
    RelatedAccount,
    Rep,
)
from doorstep.store.queries import latest_answer

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Deeper than this, an offset costs more than a page should: lists past it page by cursor.
MAX_OFFSET = 10_000


@dataclass(frozen=True)
class LeadView:
    """A lead as our own people see it: the account, the gates' evidence, path, warmth, motion."""

    lead_id: str
    account_id: str
    account_name: str | None
    country: str | None
    industry: str | None
    employees: int | None
    status: str
    partner_id: str | None
    partner_name: str | None
    partner_account_id: str | None
    partner_account_name: str | None
    relationship: str | None
    other_partners: list[dict[str, Any]]
    failed_gates: str | None
    reason: str | None
    gates: dict[str, Any]
    warmth_score: float | None
    fit_score: float | None
    answer: str | None
    answer_note: str | None
    owner_id: str | None
    owner_name: str | None
    action: str | None
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    overdue: bool
    # whom to ask for the introduction: the partner's owner of its account, else its contact
    partner_contact: str | None = None


@dataclass(frozen=True)
class OverlapView:
    """One overlap: our account and the partner's, how they matched and how sure we are."""

    account_id: str
    account_name: str | None
    partner_id: str
    partner_account_id: str
    partner_account_name: str | None
    relationship: str
    method: str
    probability: float


def _latest(column: str) -> Any:
    return latest_answer(column, Lead.partner_id, Lead.partner_account_id)


@lru_cache(maxsize=1)
def _lead_select() -> Any:
    """A lead with what its pages show; built once (statements are immutable, `.where` copies)."""
    lead, acc, p, pa_, rep = Lead, Account, Partner, PartnerAccount, Rep
    return (
        select(
            *Lead.__table__.c,
            acc.name.label("account_name"),
            acc.country,
            acc.industry,
            acc.employees,
            p.name.label("partner_name"),
            p.contact_email.label("partner_contact_email"),
            pa_.name.label("partner_account_name"),
            pa_.relationship,
            pa_.partner_owner_email,
            rep.name.label("owner_name"),
            _latest("answer").label("answer"),
            _latest("note").label("answer_note"),
        )
        .join(acc, acc.account_id == lead.account_id, isouter=True)
        .join(p, p.partner_id == lead.partner_id, isouter=True)
        .join(
            pa_,
            and_(pa_.partner_id == lead.partner_id,
                 pa_.partner_account_id == lead.partner_account_id),
            isouter=True,
        )
        .join(rep, rep.rep_id == lead.owner_id, isouter=True)
    )


def _view(row: Any, now: datetime) -> LeadView:
    return LeadView(
        lead_id=row.lead_id,
        account_id=row.account_id,
        account_name=row.account_name,
        country=row.country,
        industry=row.industry,
        employees=row.employees,
        status=row.status,
        partner_id=row.partner_id,
        partner_name=row.partner_name,
        partner_account_id=row.partner_account_id,
        partner_account_name=row.partner_account_name,
        relationship=row.relationship,
        other_partners=list(row.other_partners or []),
        failed_gates=row.failed_gates,
        reason=row.reason,
        gates=dict(row.gates or {}),
        warmth_score=row.warmth_score,
        fit_score=row.fit_score,
        answer=row.answer,
        answer_note=row.answer_note,
        owner_id=row.owner_id,
        owner_name=row.owner_name,
        action=row.action,
        due_at=row.due_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        overdue=is_overdue(row.status, row.action, row.due_at, now),
        partner_contact=row.partner_owner_email or row.partner_contact_email,
    )


def _page(offset: int, limit: int) -> tuple[int, int]:
    return max(offset, 0), min(max(limit, 1), MAX_PAGE_SIZE)


def _views(conn: Connection, ids_query: Any, now: datetime) -> list[LeadView]:
    """The leads a query of lead ids names, in its order.

    The page's ids come from the index alone; only the page's own leads are then joined to
    their account, partner and answer, so skipping rows (an offset) costs index entries only.
    """
    return _views_of(conn, list(conn.execute(ids_query).scalars()), now)


def _views_of(conn: Connection, ids: list[str], now: datetime) -> list[LeadView]:
    """The leads `ids` names, in that order."""
    if not ids:
        return []
    rows = {row.lead_id: row for row in conn.execute(_lead_select().where(Lead.lead_id.in_(ids)))}
    return [_view(rows[i], now) for i in ids if i in rows]


def active_reps(conn: Connection) -> dict[str, str]:
    """The reps who can own a lead, by id, with their names."""
    return {
        rep_id: name or rep_id
        for rep_id, name in conn.execute(
            select(Rep.rep_id, Rep.name).where(or_(Rep.active.is_(None), Rep.active.is_(True)))
            .order_by(Rep.name, Rep.rep_id)
        )
    }


def rep_queue(
    conn: Connection, rep_id: str, now: datetime, *, offset: int = 0, limit: int = PAGE_SIZE
) -> list[LeadView]:
    """One page of the leads routed to this rep and not finished, soonest deadline first."""
    offset, limit = _page(offset, limit)
    ids = (
        select(Lead.lead_id)
        .where(Lead.owner_id == rep_id, Lead.status.in_(QUEUE_STATUSES))
        .order_by(Lead.owner_id, Lead.due_at, Lead.lead_id)
        .offset(offset)
        .limit(limit)
    )
    return _views(conn, ids, now)


def lead_by_id(conn: Connection, lead_id: str, now: datetime) -> LeadView | None:
    """One lead with its evidence, or None."""
    row = conn.execute(_lead_select().where(Lead.lead_id == lead_id)).first()
    return _view(row, now) if row is not None else None


def leads_page(
    conn: Connection,
    now: datetime,
    *,
    status: str | None = None,
    owner_id: str | None = None,
    after: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> list[LeadView]:
    """One page of leads: of one owner by deadline, of one status by deadline, or all by id
    (then `after`, the last lead id of the page before, pages at any depth by the key)."""
    offset, limit = _page(offset, limit)
    ids = select(Lead.lead_id)
    if owner_id is not None:
        ids = ids.where(Lead.owner_id == owner_id)
        if status:
            ids = ids.where(Lead.status == status)
        ids = ids.order_by(Lead.owner_id, Lead.due_at, Lead.lead_id)
    elif status:
        ids = ids.where(Lead.status == status).order_by(Lead.status, Lead.due_at, Lead.lead_id)
    else:
        if after is not None:
            ids = ids.where(Lead.lead_id > after)
        ids = ids.order_by(Lead.lead_id)
    return _views(conn, ids.offset(offset).limit(limit), now)


# The leads list's sort keys and the columns they sort by (each has an index that starts with
# it, so that a page costs the page, not a sort of every lead).
LEAD_SORTS = {
    "lead": Lead.lead_id, "due": Lead.due_at, "updated": Lead.updated_at,
    "created": Lead.created_at, "warmth": Lead.warmth_score, "fit": Lead.fit_score,
    "status": Lead.status, "owner": Lead.owner_id, "partner": Lead.partner_id,
}
GATE_NAMES = ("overlap", "warmth", "fit", "motion")
SEARCH_LIST = 1_000  # accounts a name search lists by key before it leaves them to a subquery


@dataclass(frozen=True)
class LeadFilters:
    """What the leads list narrows to: a name search and four filters, all optional."""

    q: str = ""
    status: str = ""
    owner: str = ""
    partner: str = ""
    gate: str = ""

    def query_string(self) -> str:
        """The filters as URL parameters (`&`-joined, empty ones left out), for page links."""
        return urlencode({k: v for k, v in vars(self).items() if v})


def _name_prefix(column: Any, text: str) -> Any:
    """`lower(column)` starts with `text`, as a range the expression index answers."""
    start = text.lower()
    return and_(func.lower(column) >= start, func.lower(column) < start + "\U0010ffff")


def find_leads(
    conn: Connection,
    now: datetime,
    filters: LeadFilters,
    *,
    sort: str = "lead",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> list[LeadView]:
    """One page of leads matching `filters`, sorted by `sort` (a key of LEAD_SORTS).

    `q` finds leads whose account name, or whose partner's name, starts with it (case
    ignored); `gate` keeps leads that failed that gate.
    """
    offset, limit = _page(offset, limit)
    ids = select(Lead.lead_id)
    if filters.status:
        ids = ids.where(Lead.status == filters.status)
    if filters.owner:
        ids = ids.where(Lead.owner_id == filters.owner)
    if filters.partner:
        ids = ids.where(Lead.partner_id == filters.partner)
    if filters.gate in GATE_NAMES:
        ids = ids.where(Lead.failed_gates.contains(filters.gate))
    if filters.q.strip():
        text = filters.q.strip()
        # Names found first, by the expression index; a short list then joins by key (a long
        # one, from a vague search, stays a subquery).
        accounts: Any = select(Account.account_id).where(_name_prefix(Account.name, text))
        found = list(conn.execute(accounts.limit(SEARCH_LIST + 1)).scalars())
        if len(found) <= SEARCH_LIST:
            accounts = found
        partners = list(conn.execute(
            select(Partner.partner_id).where(_name_prefix(Partner.name, text))).scalars())
        # only the conditions that can hold: an always-false one beside them would keep the
        # database from looking the others up by index
        matches = [*([Lead.account_id.in_(accounts)] if len(found) else []),
                   *([Lead.partner_id.in_(partners)] if partners else [])]
        ids = ids.where(or_(*matches) if matches else false())
    column = LEAD_SORTS.get(sort, Lead.lead_id)
    order = (column.desc(), Lead.lead_id.desc()) if descending else (column, Lead.lead_id)
    return _views(conn, ids.order_by(*order).offset(offset).limit(limit), now)


def overdue_motions(
    conn: Connection, now: datetime, *, offset: int = 0, limit: int = 20
) -> list[LeadView]:
    """One page of the motions past their deadline, the most overdue first.

    One index range per status (status, due_at), merged: no sort over all overdue leads.
    """
    offset, limit = _page(offset, limit)
    parts: list[list[tuple[datetime, str]]] = []
    for status in QUEUE_STATUSES:
        keys = (
            select(Lead.due_at, Lead.lead_id)
            .where(Lead.status == status, Lead.due_at < now,
                   Lead.action.in_(late_actions(status)))
            .order_by(Lead.status, Lead.due_at, Lead.lead_id)
            .limit(offset + limit)
        )
        parts.append([(due, lead_id) for due, lead_id in conn.execute(keys) if due is not None])
    page = list(heapq.merge(*parts))[offset : offset + limit]
    return _views_of(conn, [lead_id for _, lead_id in page], now)


def overdue_counts(conn: Connection, now: datetime, *, cap: int | None = None) -> dict[str, int]:
    """How many motions are overdue per status (each counted up to `cap`, if given)."""
    counts: dict[str, int] = {}
    for status in QUEUE_STATUSES:
        late = (
            select(Lead.lead_id)
            .where(Lead.status == status, Lead.due_at < now,
                   Lead.action.in_(late_actions(status)))
        )
        if cap is not None:
            late = late.limit(cap)
        subquery = late.subquery()
        counts[status] = int(conn.execute(select(func.count()).select_from(subquery)).scalar_one())
    return counts


def overlaps_page(
    conn: Connection,
    partner_id: str | None,
    *,
    with_accounts: bool,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    visible: Any = None,
) -> list[OverlapView]:
    """One page of overlaps, of one partner (None: all), by partner account.

    Without `with_accounts` our side (account id and name) is left blank: what a partner sees.
    """
    offset, limit = _page(offset, limit)
    o, pa_, acc = Overlap, PartnerAccount, Account
    query = (
        select(*Overlap.__table__.c, pa_.name.label("partner_account_name"),
               acc.name.label("account_name"))
        .join(pa_, and_(pa_.partner_id == o.partner_id,
                        pa_.partner_account_id == o.partner_account_id), isouter=True)
        .join(acc, acc.account_id == o.account_id, isouter=True)
    )
    if partner_id is not None:
        query = query.where(o.partner_id == partner_id)
    if visible is not None:  # a partner's own read: its sharing level in force
        query = query.where(visible)
    query = query.order_by(o.partner_id, o.partner_account_id, o.account_id)
    views = []
    for row in conn.execute(query.offset(offset).limit(limit)):
        views.append(
            OverlapView(
                account_id=row.account_id if with_accounts else "",
                account_name=row.account_name if with_accounts else None,
                partner_id=row.partner_id,
                partner_account_id=row.partner_account_id,
                partner_account_name=row.partner_account_name,
                relationship=row.relationship,
                method=row.method,
                probability=row.probability,
            )
        )
    return views


# How an overlap was found, in a rep's words.
MATCH_METHODS = {
    "shared_id": "their CRM names our account",
    "domain": "same website domain",
    "name_country": "same name, same country",
    "probabilistic": "name match",
    "our_duplicate": "through our other record",
}


@dataclass(frozen=True)
class MatchView:
    """One partner's record of the account, and how mapping knew it is the same company."""

    partner_id: str
    partner_name: str
    partner_account_name: str | None
    relationship: str
    method: str
    probability: float
    agreed: list[str]
    via_account: str | None


def account_matches(conn: Connection, account_id: str) -> list[MatchView]:
    """Every partner record mapped to one of our accounts, surest first."""
    o, pa, p = Overlap, PartnerAccount, Partner
    rows = conn.execute(
        select(o.partner_id, p.name, pa.name, o.relationship, o.method, o.probability,
               o.evidence)
        .join(pa, (pa.partner_id == o.partner_id)
              & (pa.partner_account_id == o.partner_account_id))
        .join(p, p.partner_id == o.partner_id, isouter=True)
        .where(o.account_id == account_id)
        .order_by(o.probability.desc(), o.partner_id, o.partner_account_id)
    ).all()
    out = []
    for partner_id, partner_name, account_name, relationship, method, probability, ev in rows:
        evidence = ev if isinstance(ev, dict) else {}
        out.append(MatchView(partner_id, partner_name or partner_id, account_name, relationship,
                             MATCH_METHODS.get(method, method), float(probability),
                             [str(a) for a in evidence.get("agreed", [])],
                             evidence.get("via_account")))
    return out


def partner_names(conn: Connection, partner_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Partner names by id (all partners, or the ones asked for)."""
    query = select(Partner.partner_id, Partner.name)
    if partner_ids is not None:
        query = query.where(Partner.partner_id.in_(list(partner_ids)))
    return {pid: name or pid for pid, name in conn.execute(query.order_by(Partner.partner_id))}


def partner_exists(conn: Connection, partner_id: str) -> bool:
    """Whether the workspace has this partner."""
    found = conn.execute(select(Partner.partner_id).where(Partner.partner_id == partner_id))
    return found.first() is not None


@dataclass(frozen=True)
class RelatedView:
    """A partner record of the same brand in another country, with its own website."""

    partner_id: str
    partner_name: str
    partner_account_name: str | None
    country: str | None
    website: str | None
    relationship: str


def account_related(conn: Connection, account_id: str) -> list[RelatedView]:
    """The related accounts of one of ours: never overlaps, shown so a rep does not ask."""
    r, pa, p = RelatedAccount, PartnerAccount, Partner
    rows = conn.execute(
        select(r.partner_id, p.name, pa.name, pa.country, pa.website, r.relationship)
        .join(pa, (pa.partner_id == r.partner_id)
              & (pa.partner_account_id == r.partner_account_id))
        .join(p, p.partner_id == r.partner_id, isouter=True)
        .where(r.account_id == account_id)
        .order_by(r.partner_id, r.partner_account_id)
    ).all()
    return [RelatedView(pid, pname or pid, name, country, website, rel)
            for pid, pname, name, country, website, rel in rows]
