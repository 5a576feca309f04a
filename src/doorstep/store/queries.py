"""Facts several stages read, each defined by one query: the latest warmth answer, and the
stamp that changes whenever the data the pages show changes.

The latest answer of a partner about one of its accounts is the one with the greatest
`answered_at`; the table's key (partner, account, answered_at) makes it unique, so there is no
tie to break. Every stage, page and report reads it through `latest_answer` or `latest_answers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from doorstep.store.models import ImportRun, LeadEvent, PartnerLink, StageLock, WarmthAnswer


@dataclass(frozen=True, slots=True)
class LatestAnswer:
    """A partner's latest answer on one of its accounts."""

    answer: str
    answered_at: datetime
    note: str | None = None
    answered_by: str | None = None


def latest_answer(column: Any, partner_id: Any, partner_account_id: Any) -> Any:
    """A scalar subquery: `column` of the latest answer on (partner_id, partner_account_id),
    correlated to the enclosing query's columns.

    One level deep on purpose: a subquery nested inside it would not be correlated to the
    enclosing query and would read its table whole. The table's key (partner, account,
    answered_at) serves the newest-first lookup.
    """
    w = aliased(WarmthAnswer)
    return (
        select(getattr(w, column))
        .where(w.partner_id == partner_id, w.partner_account_id == partner_account_id)
        .order_by(w.answered_at.desc())
        .limit(1)
        .correlate_except(w)
        .scalar_subquery()
    )


def latest_answers_select(partner_id: str | None = None) -> Any:
    """The latest answer per (partner, partner account): one row each."""
    a = WarmthAnswer
    newer = aliased(WarmthAnswer)
    newest = (
        select(func.max(newer.answered_at))
        .where(newer.partner_id == a.partner_id,
               newer.partner_account_id == a.partner_account_id)
        .scalar_subquery()
    )
    query = select(
        a.partner_id, a.partner_account_id, a.answer, a.answered_at, a.note, a.answered_by
    ).where(a.answered_at == newest)
    if partner_id is not None:
        query = query.where(a.partner_id == partner_id)
    return query


def latest_answers(
    conn: Connection, partner_id: str | None = None
) -> dict[tuple[str, str], LatestAnswer]:
    """The latest answer per (partner_id, partner_account_id), of one partner or of all."""
    return {
        (pid, paid): LatestAnswer(answer, answered_at, note, by)
        for pid, paid, answer, answered_at, note, by in conn.execute(
            latest_answers_select(partner_id)
        )
    }


def data_stamp(conn: Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of what pages, reports and the dashboard read: equal stamps mean
    equal data (only the clock may have moved).

    Every stage that writes takes a stage lock (its time moves), and so does an answer given in
    the portal; every lead change is an event; every import has an id; the stage locks and what
    linked partners declared they share are a handful of rows each, taken whole.
    """
    moved = conn.execute(select(
        select(func.max(LeadEvent.event_id)).scalar_subquery(),
        select(func.max(ImportRun.import_id)).scalar_subquery(),
    )).one()
    locks = conn.execute(select(StageLock.name, StageLock.held_at).order_by(StageLock.name)).all()
    links = conn.execute(
        select(PartnerLink.partner_id, PartnerLink.their_levels, PartnerLink.bundle_id,
               PartnerLink.public_key).order_by(PartnerLink.partner_id)
    ).all()
    return (*moved, *(str(tuple(row)) for row in (*locks, *links)))
