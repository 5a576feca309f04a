"""What a caller may see and do: one layer under both the pages and the API.

A record outside the caller's scope raises `OutOfScope`, which both surfaces answer as 404,
exactly as if it did not exist. Owner actions go through `owner_action` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doorstep.act import LeadActionError, LeadChange, accept_lead, mark_intro_made, reject_lead
from doorstep.feedback import Scorecard, partner_digest
from doorstep.share.policy import OVERLAPS, partner_visibility, sees_all, visible_clause
from doorstep.store.models import Lead, Overlap, WarmthRequest
from doorstep.store.queries import data_stamp
from doorstep.web.auth import REP, Principal
from doorstep.web.deps import AppContext, now
from doorstep.web.queries import LeadView, lead_by_id

ACCEPT, REJECT, INTRO = "accept", "reject", "intro"
DONE_WORDS = {ACCEPT: "accepted", REJECT: "rejected", INTRO: "marked intro made"}

__all__ = ["ACCEPT", "DONE_WORDS", "INTRO", "REJECT", "LeadActionError", "OutOfScope"]


class OutOfScope(LookupError):
    """The record does not exist for this caller."""


def lead_in_scope(ctx: AppContext, principal: Principal, lead_id: str) -> LeadView:
    """The lead if the caller may see it: staff any lead, a rep only the leads routed to them."""
    with ctx.workspace.store.engine.connect() as conn:
        lead = lead_by_id(conn, lead_id, now())
    if lead is None or (principal.role == REP and lead.owner_id != principal.rep_id):
        raise OutOfScope(f"there is no lead {lead_id}.")
    return lead


def owner_action(
    ctx: AppContext,
    principal: Principal,
    lead_id: str,
    kind: str,
    *,
    reason: str = "",
    note: str | None = None,
) -> LeadChange:
    """Accept, reject (with a reason) or mark the intro made, as the lead's owner.

    Raises OutOfScope for a lead the caller may not see and LeadActionError for a move the
    lead's status does not allow; a change marks the dashboard's numbers stale.
    """
    lead_in_scope(ctx, principal, lead_id)
    actor = principal.rep_id
    if kind == ACCEPT:
        change = accept_lead(ctx.workspace, lead_id, actor=actor, as_rep=actor)
    elif kind == REJECT:
        change = reject_lead(ctx.workspace, lead_id, reason, note=note or None, actor=actor,
                             as_rep=actor)
    elif kind == INTRO:
        change = mark_intro_made(ctx.workspace, lead_id, actor=actor, as_rep=actor)
    else:
        raise LeadActionError(f"there is no lead action {kind!r}.")
    ctx.snapshots.invalidate()
    return change


@dataclass(frozen=True)
class PartnerView:
    """What one partner may see, as conditions every partner-facing read adds."""

    partner_id: str
    leads: Any  # on Lead.account_id
    checks: Any  # on WarmthRequest.account_id
    overlaps: Any  # on Overlap.account_id
    sees_all: bool


def partner_view(ctx: AppContext, partner_id: str) -> PartnerView:
    """The sharing level in force for this partner, as SQL conditions (records at `overlaps`)."""
    config = ctx.workspace.config
    with ctx.workspace.store.engine.connect() as conn:
        vis = partner_visibility(conn, config, partner_id)  # read once, for every clause
        return PartnerView(
            partner_id,
            visible_clause(conn, config, partner_id, Lead.account_id, OVERLAPS, vis=vis),
            visible_clause(conn, config, partner_id, WarmthRequest.account_id, OVERLAPS,
                           vis=vis),
            visible_clause(conn, config, partner_id, Overlap.account_id, OVERLAPS, vis=vis),
            sees_all(conn, config, partner_id, OVERLAPS, vis=vis),
        )


def partner_scorecard(ctx: AppContext, view: PartnerView) -> Scorecard | None:
    """The scorecard this partner may see: the dashboard's when it may see everything, else
    one counted over the populations it may count (and no rate drawn on the others)."""
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    if snapshot is None:
        return None
    if view.sees_all:
        return snapshot.scorecards.get(view.partner_id)
    with ctx.workspace.store.engine.connect() as conn:
        stamp = data_stamp(conn)  # the partner's levels are part of it
    # counted once per snapshot and sharing levels: seconds at a million leads
    return ctx.snapshots.remember(
        ("partner scorecard", view.partner_id, stamp, ctx.share_amounts),
        lambda: partner_digest(ctx.workspace, view.partner_id, report=snapshot.report,
                               amounts=ctx.share_amounts).scorecard,
    )
