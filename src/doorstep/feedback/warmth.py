"""Warmth checks as a partner sees and answers them; an answer is stored for the next qualify run.

The qualify stage asks a partner about one of its accounts with a warmth request; the partner's
answer (strong, some, none, with a note) is written to `warmth_answers`, the same table the
workspace's warmth_answers file loads, so the next `doorstep qualify` uses the latest answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, select

from doorstep.share.policy import OVERLAPS, visible_clause
from doorstep.store.db import hold_stage_lock
from doorstep.store.models import PartnerAccount, WarmthAnswer, WarmthRequest
from doorstep.store.queries import latest_answer
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

ANSWERS = ("strong", "some", "none")
# What each answer means, in the words the portal shows the partner: one rule for every surface.
ANSWER_MEANINGS = {
    "strong": "you know someone there well and can introduce us now",
    "some": "you have a contact there, but would need to check before introducing us",
    "none": "you have no relationship there you could use for an introduction",
}
# How old a warmth check is, as the portal filters them: (label, youngest days, oldest days).
CHECK_AGES = {
    "week": ("asked in the last 7 days", 0, 7),
    "month": ("asked 7 to 30 days ago", 7, 30),
    "older": ("asked more than 30 days ago", 30, None),
}
OPEN = "open"
ANSWERED = "answered"
NOTE_MAX_CHARS = 2000
WEB_SOURCE = "web"


class WarmthCheckNotFound(LookupError):
    """This partner has no warmth check on that account."""


class InvalidAnswer(ValueError):
    """An answer that is not strong, some or none, or a note that is too long."""


@dataclass(frozen=True)
class WarmthCheck:
    """A warmth check put to a partner, with the latest answer if there is one."""

    partner_id: str
    partner_account_id: str
    partner_account_name: str | None
    relationship: str | None
    warmth_score: float
    requested_at: datetime
    status: str
    answer: str | None
    note: str | None
    answered_at: datetime | None
    answered_by: str | None


@dataclass(frozen=True)
class WarmthAnswerRecord:
    """One stored answer to a warmth check."""

    partner_id: str
    partner_account_id: str
    answer: str
    note: str | None
    answered_at: datetime
    answered_by: str | None


def _answered(w: type[WarmthRequest]) -> Any:
    a = WarmthAnswer
    return exists(
        select(a.answered_at).where(
            a.partner_id == w.partner_id, a.partner_account_id == w.partner_account_id
        )
    )


def _latest_answer(w: type[WarmthRequest], column: str) -> Any:
    return latest_answer(column, w.partner_id, w.partner_account_id)


def warmth_checks(
    conn: Connection,
    partner_id: str | None,
    *,
    status: str | None = OPEN,
    offset: int = 0,
    limit: int = 50,
    visible: Any = None,
    relationship: str | None = None,
    age: str | None = None,
    now: datetime | None = None,
) -> list[WarmthCheck]:
    """One page of warmth checks, of one partner (None: every partner), by account id.

    `status` "open" lists checks nobody answered yet, "answered" the others, None both;
    `visible` is the partner's sharing condition on our account id (a partner-facing read);
    `relationship` and `age` (a key of CHECK_AGES) narrow the list.
    """
    w, pa_ = WarmthRequest, PartnerAccount
    query = select(
        w.partner_id,
        w.partner_account_id,
        pa_.name,
        pa_.relationship,
        w.warmth_score,
        w.requested_at,
        _answered(w).label("is_answered"),
        _latest_answer(w, "answer").label("answer"),
        _latest_answer(w, "note").label("note"),
        _latest_answer(w, "answered_at").label("answered_at"),
        _latest_answer(w, "answered_by").label("answered_by"),
    ).join(
        pa_,
        and_(pa_.partner_id == w.partner_id, pa_.partner_account_id == w.partner_account_id),
        isouter=True,
    )
    if partner_id is not None:
        query = query.where(w.partner_id == partner_id)
    if visible is not None:
        query = query.where(visible)
    if relationship:
        query = query.where(pa_.relationship == relationship)
    if age in CHECK_AGES:
        _, youngest, oldest = CHECK_AGES[age]
        moment = naive_utc(now)
        query = query.where(w.requested_at <= moment - timedelta(days=youngest))
        if oldest is not None:
            query = query.where(w.requested_at > moment - timedelta(days=oldest))
    if status == OPEN:
        query = query.where(~_answered(w))
    elif status == ANSWERED:
        query = query.where(_answered(w))
    query = query.order_by(w.partner_id, w.partner_account_id).offset(offset).limit(limit)
    return [
        WarmthCheck(
            partner_id=r.partner_id,
            partner_account_id=r.partner_account_id,
            partner_account_name=r.name,
            relationship=r.relationship,
            warmth_score=r.warmth_score,
            requested_at=r.requested_at,
            status=ANSWERED if r.is_answered else OPEN,
            answer=r.answer,
            note=r.note,
            answered_at=r.answered_at,
            answered_by=r.answered_by,
        )
        for r in conn.execute(query)
    ]


def warmth_answers(
    conn: Connection, partner_id: str | None, *, offset: int = 0, limit: int = 50
) -> list[WarmthAnswerRecord]:
    """One page of stored warmth answers of one partner (None: every partner), newest first."""
    a = WarmthAnswer
    query = select(a.partner_id, a.partner_account_id, a.answer, a.note, a.answered_at,
                   a.answered_by)
    if partner_id is not None:
        query = query.where(a.partner_id == partner_id)
    query = query.order_by(a.answered_at.desc(), a.partner_account_id).offset(offset).limit(limit)
    return [WarmthAnswerRecord(*row) for row in conn.execute(query)]


def _row_hash(values: dict[str, Any]) -> str:
    text = "\x1f".join(str(values[k]) for k in sorted(values))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


PORTAL_LOCK = "portal"


def answer_warmth_check(
    workspace: Workspace,
    partner_id: str,
    partner_account_id: str,
    answer: str,
    *,
    note: str | None = None,
    answered_by: str | None = None,
    now: datetime | None = None,
) -> WarmthAnswerRecord:
    """Store a partner's answer to its warmth check on one of its accounts.

    Raises WarmthCheckNotFound when this partner was never asked about that account, and
    InvalidAnswer for an answer other than strong, some or none; answering again adds a newer
    answer, and qualify uses the latest.
    """
    cleaned = answer.strip().lower()
    if cleaned not in ANSWERS:
        raise InvalidAnswer(f"answer {answer!r} is not one of: {', '.join(ANSWERS)}.")
    text = (note or "").strip() or None
    if text is not None and len(text) > NOTE_MAX_CHARS:
        raise InvalidAnswer(f"the note is longer than {NOTE_MAX_CHARS} characters.")
    moment = naive_utc(now)
    w = WarmthRequest
    with workspace.store.engine.begin() as conn:
        hold_stage_lock(conn, PORTAL_LOCK)  # answers one at a time; pages see the data moved
        # a check on an account the partner may not see does not exist for it
        shown = visible_clause(conn, workspace.config, partner_id, w.account_id, OVERLAPS)
        asked = conn.execute(
            select(w.partner_account_id).where(
                w.partner_id == partner_id, w.partner_account_id == partner_account_id, shown
            )
        ).first()
        if asked is None:
            raise WarmthCheckNotFound(
                f"partner {partner_id} has no warmth check on account {partner_account_id}."
            )
        values: dict[str, Any] = {
            "partner_id": partner_id,
            "partner_account_id": partner_account_id,
            "answered_at": moment,
            "answer": cleaned,
            "note": text,
            "answered_by": answered_by,
        }
        conn.execute(
            insert(WarmthAnswer).values(
                **values, attributes={"source": WEB_SOURCE}, row_hash=_row_hash(values)
            )
        )
    return WarmthAnswerRecord(partner_id, partner_account_id, cleaned, text, moment, answered_by)
