"""What an owner does with a routed lead: accept it, reject it with a reason, report the intro made.

Each is one lifecycle transition (DESIGN §4), checked against the lead's current status and
recorded as one event. The partner's intro request goes out on the next `act` run after the
owner accepts: the partner is asked only once our rep has taken the lead on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from doorstep.act.outbox import cancel_pending
from doorstep.lifecycle import ACCEPTED, INTRO_MADE, INTRO_REQUESTED, REJECTED, ROUTED
from doorstep.store.events import Event, record_events
from doorstep.store.models import Lead, Rep, User
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

REASSIGNED = "reassigned"
REJECT_REASONS = ("bad_fit", "already_working", "no_contact", "duplicate", "other")

# What each owner action needs the lead to be, and what it makes it. An intro the partner made
# before we asked still counts, hence intro_made from accepted too.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    ACCEPTED: ((ROUTED,), ACCEPTED),
    REJECTED: ((ROUTED, ACCEPTED, INTRO_REQUESTED), REJECTED),
    INTRO_MADE: ((ACCEPTED, INTRO_REQUESTED), INTRO_MADE),
}


class LeadActionError(ValueError):
    """An owner action that cannot apply: an unknown lead, a wrong status or reason."""


@dataclass(frozen=True)
class LeadChange:
    """One transition an owner made: the lead, from and to which status, who, when."""

    lead_id: str
    from_status: str
    to_status: str
    actor: str
    at: datetime
    detail: dict[str, Any] | None = None


def _say(status: str) -> str:
    return status.replace("_", " ")


def check_transition(lead_id: str, status: str, kind: str) -> str:
    """The status owner action `kind` moves the lead to; LeadActionError when it cannot."""
    allowed, to_status = TRANSITIONS[kind]
    if status in allowed:
        return to_status
    need = " or ".join(_say(s) for s in allowed)
    verb = {ACCEPTED: "accept it", REJECTED: "reject it", INTRO_MADE: "mark the intro made"}[kind]
    raise LeadActionError(f"lead {lead_id} is {_say(status)}; it must be {need} to {verb}.")


def acting_rep(workspace: Workspace, email: str) -> str:
    """The rep id someone acts as on leads: a rep user's, else the rep with that email.

    The web app's rule, for every surface: only reps act on leads, and only on their own.
    LeadActionError names what to do when the email is unknown or not a rep's.
    """
    address = email.strip().lower()
    with workspace.store.engine.connect() as conn:
        user = conn.execute(
            select(User.role, User.rep_id, User.active).where(User.email == address)
        ).first()
        rep = conn.execute(
            select(Rep.rep_id).where(func.lower(Rep.email) == address).order_by(Rep.rep_id)
        ).first()
    if user is not None:
        if not user.active:
            raise LeadActionError(f"user {address} is deactivated; an admin can activate it.")
        if user.role != "rep" or not user.rep_id:
            raise LeadActionError(
                f"{address} is a {user.role.replace('_', ' ')} user: only the rep a lead is "
                "routed to may accept, reject or mark it."
            )
        return str(user.rep_id)
    if rep is not None:
        return str(rep.rep_id)
    raise LeadActionError(
        f"no user or rep has the email {address}; name the rep the lead is routed to "
        "(`doorstep user list` shows the users, reps.csv the reps)."
    )


def _status_and_owner(conn: Connection, lead_id: str) -> tuple[str, str | None]:
    """A lead's status and owner; LeadActionError when there is no such lead."""
    row = conn.execute(
        select(Lead.status, Lead.owner_id).where(Lead.lead_id == lead_id)
    ).one_or_none()
    if row is None:
        raise LeadActionError(f"there is no lead {lead_id} in this workspace.")
    return str(row.status), row.owner_id


def _transition(
    conn: Connection,
    lead_id: str,
    kind: str,
    *,
    actor: str | None,
    now: datetime,
    detail: dict[str, Any] | None = None,
    lead_reason: str | None = None,
    as_rep: str | None = None,
) -> LeadChange:
    status, owner_id = _status_and_owner(conn, lead_id)
    if as_rep is not None and owner_id != as_rep:
        raise LeadActionError(
            f"lead {lead_id} is routed to {owner_id or 'nobody'}, not to {as_rep}: only the rep "
            "a lead is routed to may act on it."
        )
    to_status = check_transition(lead_id, status, kind)
    who = actor or owner_id or "unknown"
    values: dict[str, Any] = {"status": to_status, "updated_at": now}
    if lead_reason is not None:
        values["reason"] = lead_reason
    moved = conn.execute(
        update(Lead).where(Lead.lead_id == lead_id, Lead.status == status).values(**values)
    )
    if moved.rowcount != 1:  # someone else moved the lead since we read it
        raise LeadActionError(f"lead {lead_id} changed while being updated; try again.")
    record_events(conn, [Event(lead_id, kind, to_status, who, now, status, detail)])
    return LeadChange(lead_id, status, to_status, who, now, detail)


def accept_lead(
    workspace: Workspace,
    lead_id: str,
    *,
    actor: str | None = None,
    now: datetime | None = None,
    as_rep: str | None = None,
) -> LeadChange:
    """The owner takes the routed lead on; the actor defaults to the lead's owner. With
    `as_rep`, refused unless the lead is routed to that rep."""
    with workspace.store.engine.begin() as conn:
        return _transition(conn, lead_id, ACCEPTED, actor=actor, now=naive_utc(now),
                           as_rep=as_rep)


def reject_lead(
    workspace: Workspace,
    lead_id: str,
    reason: str,
    *,
    note: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    as_rep: str | None = None,
) -> LeadChange:
    """The owner turns the lead down for one of REJECT_REASONS; its unsent messages are dropped."""
    if reason not in REJECT_REASONS:
        raise LeadActionError(
            f"reason {reason!r} is not one of: {', '.join(REJECT_REASONS)}."
        )
    detail: dict[str, Any] = {"reason": reason}
    if note:
        detail["note"] = note
    with workspace.store.engine.begin() as conn:
        change = _transition(
            conn,
            lead_id,
            REJECTED,
            actor=actor,
            now=naive_utc(now),
            detail=detail,
            lead_reason=f"rejected: {reason}" + (f" ({note})" if note else ""),
            as_rep=as_rep,
        )
        cancel_pending(conn, [lead_id], reason=f"lead rejected: {reason}")
    return change


def mark_intro_made(
    workspace: Workspace,
    lead_id: str,
    *,
    actor: str | None = None,
    now: datetime | None = None,
    as_rep: str | None = None,
) -> LeadChange:
    """The partner introduced our rep: the motion is done."""
    with workspace.store.engine.begin() as conn:
        return _transition(conn, lead_id, INTRO_MADE, actor=actor, now=naive_utc(now),
                           as_rep=as_rep)


REASSIGNABLE = (ROUTED, ACCEPTED, INTRO_REQUESTED)


def reassign_lead(
    workspace: Workspace,
    lead_id: str,
    owner_id: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> LeadChange:
    """Give a lead to another active rep (an admin's or partner manager's decision).

    One `reassigned` event records who had it and who has it. A lead the former owner had
    accepted goes back to `routed`, so that the new owner accepts it in turn; the next `act` run
    sends the new owner the assignment message through the outbox.
    """
    moment = naive_utc(now)
    with workspace.store.engine.begin() as conn:
        rep = conn.execute(
            select(Rep.rep_id, Rep.active).where(Rep.rep_id == owner_id)
        ).first()
        if rep is None:
            raise LeadActionError(f"there is no rep {owner_id}; reps.csv lists them.")
        if rep.active is False:
            raise LeadActionError(f"rep {owner_id} is not active; choose an active rep.")
        status, before = _status_and_owner(conn, lead_id)
        if status not in REASSIGNABLE:
            raise LeadActionError(
                f"lead {lead_id} is {_say(status)}; only a lead that is "
                f"{', '.join(_say(s) for s in REASSIGNABLE)} can be reassigned."
            )
        if before == owner_id:
            raise LeadActionError(f"lead {lead_id} is already routed to {owner_id}.")
        to_status = ROUTED if status == ACCEPTED else status
        moved = conn.execute(
            update(Lead).where(Lead.lead_id == lead_id, Lead.status == status,
                               Lead.owner_id == before)
            .values(owner_id=owner_id, status=to_status, updated_at=moment)
        )
        if moved.rowcount != 1:
            raise LeadActionError(f"lead {lead_id} changed while being updated; try again.")
        detail = {"from_owner_id": before, "to_owner_id": owner_id}
        record_events(conn, [Event(lead_id, REASSIGNED, to_status, actor, moment, status, detail)])
    return LeadChange(lead_id, status, to_status, actor, moment, detail)
