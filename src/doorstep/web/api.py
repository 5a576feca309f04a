"""The REST API under /api/: leads, overlaps, warmth checks and answers, scorecards, the report.

Send `Authorization: Bearer TOKEN` (a token from `doorstep user token`). The same roles hold as
on the pages; a record outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from doorstep.act import (
    REJECT_REASONS,
    LeadActionError,
    LeadChange,
)
from doorstep.feedback import (
    InvalidAnswer,
    Scorecard,
    SurfacedLead,
    WarmthCheckNotFound,
    answer_warmth_check,
    surfaced_lead,
    surfaced_leads_page,
    warmth_answers,
    warmth_checks,
)
from doorstep.feedback.warmth import ANSWERED, OPEN
from doorstep.measure import report_json
from doorstep.share.bundle import exchange_bundles
from doorstep.share.identity import ShareError
from doorstep.share.private import serve_fields, serve_psi
from doorstep.track import lead_history
from doorstep.web.auth import PARTNER, REP, ROLES, STAFF, Principal
from doorstep.web.deps import AppContext, Context, cursor_of, now, parse_cursor, require
from doorstep.web.queries import (
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    LeadView,
    leads_page,
    overlaps_page,
    partner_exists,
)
from doorstep.web.scope import (
    OutOfScope,
    lead_in_scope,
    owner_action,
    partner_scorecard,
    partner_view,
)

router = APIRouter(prefix="/api", tags=["api"])

Anyone = Annotated[Principal, Depends(require(*ROLES))]
StaffOrRep = Annotated[Principal, Depends(require(*STAFF, REP))]
StaffOrPartner = Annotated[Principal, Depends(require(*STAFF, PARTNER))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
RepUser = Annotated[Principal, Depends(require(REP))]
PartnerUser = Annotated[Principal, Depends(require(PARTNER))]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


# --- models --------------------------------------------------------------------------------------


class Me(BaseModel):
    """The caller."""

    email: str
    role: str
    partner_id: str | None
    rep_id: str | None


class LeadOut(BaseModel):
    """A lead as our own people see it: account, gates' evidence, partner path, warmth, motion."""

    lead_id: str
    account_id: str
    account_name: str | None
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
    owner_id: str | None
    action: str | None
    due_at: datetime | None
    overdue: bool
    created_at: datetime
    updated_at: datetime


class PartnerLeadOut(BaseModel):
    """A lead as the partner that surfaced it sees it: its own account name and the outcome."""

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
    amount: float | None = Field(None, description="only with [web] share_amounts = true")


class LeadPage(BaseModel):
    """One page of leads; the next page is at `next_after` (all leads, by id) or `next_offset`
    (a status or an owner's), both null on the last page."""

    items: list[LeadOut]
    offset: int
    next_offset: int | None
    next_after: str | None = None


class PartnerLeadPage(BaseModel):
    """One page of a partner's surfaced leads, most recently changed first; pass `next_before`
    as `before` for the next page (null on the last)."""

    items: list[PartnerLeadOut]
    next_before: str | None


class EventOut(BaseModel):
    """One event in a lead's history."""

    kind: str
    from_status: str | None
    to_status: str | None
    actor: str
    at: datetime
    detail: dict[str, Any] | None


class RejectIn(BaseModel):
    """Why the rep turns the lead down."""

    reason: str = Field(description=f"one of: {', '.join(REJECT_REASONS)}")
    note: str | None = Field(None, max_length=2000)


class LeadChangeOut(BaseModel):
    """The transition an owner action made."""

    lead_id: str
    from_status: str
    to_status: str
    actor: str
    at: datetime


class OverlapOut(BaseModel):
    """An overlap; our account's id and name are left out for partners."""

    account_id: str | None
    account_name: str | None
    partner_id: str
    partner_account_id: str
    partner_account_name: str | None
    relationship: str
    method: str
    probability: float


class WarmthCheckOut(BaseModel):
    """A warmth check put to a partner, with its latest answer."""

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


class WarmthAnswerIn(BaseModel):
    """A partner's answer to one of its warmth checks."""

    partner_account_id: str
    answer: Literal["strong", "some", "none"]
    note: str | None = Field(None, max_length=2000)


class WarmthAnswerOut(BaseModel):
    """A stored warmth answer."""

    partner_id: str
    partner_account_id: str
    answer: str
    note: str | None
    answered_at: datetime
    answered_by: str | None


class ScoreLineOut(BaseModel):
    """One scorecard count and what it is a share of."""

    name: str
    label: str
    count: int
    base: int
    rate: float | None


class ScorecardOut(BaseModel):
    """A partner's scorecard; the EQL count comes with its conversion and the MQL rate."""

    partner_id: str
    partner_name: str
    lines: list[ScoreLineOut]
    eql_measured: int
    eql_opportunities: int
    eql_rate: float | None
    eql_ci_low: float | None
    eql_ci_high: float | None
    mql_rate: float | None
    rate_ratio_vs_mql: float | None
    intros: dict[str, int]
    pipeline: float | None = Field(None, description="only with [web] share_amounts = true")


# --- helpers -------------------------------------------------------------------------------------


def _lead_out(view: LeadView) -> LeadOut:
    return LeadOut.model_validate(view, from_attributes=True)


def _partner_lead_out(lead: SurfacedLead) -> PartnerLeadOut:
    return PartnerLeadOut.model_validate(lead, from_attributes=True)


def _change_out(change: LeadChange) -> LeadChangeOut:
    return LeadChangeOut.model_validate(change, from_attributes=True)


def _opportunities(ctx: AppContext) -> dict[str, Any]:
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    return snapshot.opportunities if snapshot is not None else {}


def _scoped_lead(ctx: AppContext, principal: Principal, lead_id: str) -> LeadView:
    try:
        return lead_in_scope(ctx, principal, lead_id)
    except OutOfScope as exc:
        raise HTTPException(404, str(exc)) from exc


def _scorecard_out(card: Scorecard, share_amounts: bool) -> ScorecardOut:
    c = card.conversion
    return ScorecardOut(
        partner_id=card.partner_id,
        partner_name=card.partner_name,
        lines=[ScoreLineOut(name=x.name, label=x.label, count=x.count, base=x.base, rate=x.rate)
               for x in card.lines],
        eql_measured=c.measured if c else 0,
        eql_opportunities=c.opportunities if c else 0,
        eql_rate=c.rate if c else None,
        eql_ci_low=c.ci_low if c else None,
        eql_ci_high=c.ci_high if c else None,
        mql_rate=card.mql_rate,
        rate_ratio_vs_mql=c.rate_ratio_vs_mql if c else None,
        intros={"requested": card.intros.requested, "made": card.intros.made,
                "waiting": card.intros.waiting, "overdue": card.intros.overdue,
                "dropped": card.intros.dropped},
        pipeline=card.pipeline if share_amounts else None,
    )


def _partner_scope(principal: Principal, partner_id: str | None) -> str | None:
    """The partner a request may read: a partner user only its own (another answers 404)."""
    if principal.role != PARTNER:
        return partner_id
    if partner_id is not None and partner_id != principal.partner_id:
        raise HTTPException(404, f"there is no partner {partner_id}.")
    return principal.partner_id


# --- routes --------------------------------------------------------------------------------------


@router.get("/me")
def me(principal: Anyone) -> Me:
    """Who the token or session belongs to."""
    return Me(email=principal.email, role=principal.role, partner_id=principal.partner_id,
              rep_id=principal.rep_id)


def _exactly(model: BaseModel) -> Response:
    """The model as JSON, as built: a route whose answer is one of two shapes (staff or
    partner) returns it this way, so that nothing re-validates it against the other shape."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/leads", response_model=LeadPage | PartnerLeadPage)
def list_leads(
    request: Request,
    ctx: Context,
    principal: Anyone,
    status: str | None = None,
    after: Annotated[str | None, Query(description="all leads: the last lead_id seen")] = None,
    before: Annotated[str | None, Query(description="partners: the next_before seen")] = None,
    offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
) -> Response:
    """Leads in the caller's scope: all (admin, partner manager), routed to them (rep), or
    surfaced by their partner (partner, with outcomes only)."""
    return ctx.pages.answer(request, principal, lambda: _leads(
        ctx, principal, status, after, before, offset, limit))


def _leads(ctx: AppContext, principal: Principal, status: str | None, after: str | None,
           before: str | None, offset: int, limit: int) -> Response:
    view = partner_view(ctx, principal.partner_id) if principal.partner_id else None
    with ctx.workspace.store.engine.connect() as conn:
        if principal.role == PARTNER:
            assert principal.partner_id is not None and view is not None
            found = surfaced_leads_page(conn, principal.partner_id,
                                        opportunities=_opportunities(ctx),
                                        amounts=ctx.share_amounts, before=parse_cursor(before),
                                        limit=limit + 1, visible=view.leads)
            return _exactly(PartnerLeadPage(
                items=[_partner_lead_out(x) for x in found[:limit]],
                next_before=cursor_of(found[limit - 1]) if len(found) > limit else None,
            ))
        owner = principal.rep_id if principal.role == REP else None
        if principal.role == REP and owner is None:
            raise HTTPException(404, "this rep user has no rep_id.")
        views = leads_page(conn, now(), status=status, owner_id=owner, after=after,
                           offset=offset, limit=limit + 1)
    more = len(views) > limit
    by_key = owner is None and not status
    return _exactly(LeadPage(items=[_lead_out(v) for v in views[:limit]], offset=offset,
                             next_offset=offset + limit if more and not by_key else None,
                             next_after=views[limit - 1].lead_id if more and by_key else None))


@router.get("/leads/{lead_id}", response_model=LeadOut | PartnerLeadOut)
def get_lead(ctx: Context, principal: Anyone, lead_id: str) -> Response:
    """One lead in the caller's scope; any other answers 404."""
    if principal.role == PARTNER:
        assert principal.partner_id is not None
        view = partner_view(ctx, principal.partner_id)
        with ctx.workspace.store.engine.connect() as conn:
            lead = surfaced_lead(conn, principal.partner_id, lead_id,
                                 opportunities=_opportunities(ctx), amounts=ctx.share_amounts,
                                 visible=view.leads)
        if lead is None:
            raise HTTPException(404, f"there is no lead {lead_id}.")
        return _exactly(_partner_lead_out(lead))
    return _exactly(_lead_out(_scoped_lead(ctx, principal, lead_id)))


@router.get("/leads/{lead_id}/events")
def get_lead_events(ctx: Context, principal: StaffOrRep, lead_id: str) -> list[EventOut]:
    """A lead's history, oldest first."""
    _scoped_lead(ctx, principal, lead_id)
    with ctx.workspace.store.engine.connect() as conn:
        history = lead_history(conn, lead_id)
    return [EventOut(kind=e.kind, from_status=e.from_status, to_status=e.to_status,
                     actor=e.actor, at=e.at, detail=e.detail) for e in history]


def _owner_action(ctx: AppContext, principal: Principal, lead_id: str, kind: str,
                  body: RejectIn | None = None) -> LeadChangeOut:
    try:
        change = owner_action(ctx, principal, lead_id, kind,
                              reason=body.reason if body else "", note=body.note if body else None)
    except OutOfScope as exc:
        raise HTTPException(404, str(exc)) from exc
    except LeadActionError as exc:
        raise HTTPException(409, str(exc)) from exc
    return _change_out(change)


@router.post("/leads/{lead_id}/accept")
def post_accept(ctx: Context, principal: RepUser, lead_id: str) -> LeadChangeOut:
    """The rep takes a lead routed to them on."""
    return _owner_action(ctx, principal, lead_id, "accept")


@router.post("/leads/{lead_id}/reject")
def post_reject(ctx: Context, principal: RepUser, lead_id: str, body: RejectIn) -> LeadChangeOut:
    """The rep turns a lead routed to them down, with a reason."""
    if body.reason not in REJECT_REASONS:
        raise HTTPException(422, f"reason must be one of: {', '.join(REJECT_REASONS)}.")
    return _owner_action(ctx, principal, lead_id, "reject", body)


@router.post("/leads/{lead_id}/intro-made")
def post_intro_made(ctx: Context, principal: RepUser, lead_id: str) -> LeadChangeOut:
    """The partner introduced the rep."""
    return _owner_action(ctx, principal, lead_id, "intro")


@router.get("/overlaps")
def list_overlaps(
    ctx: Context, principal: StaffOrPartner, partner_id: str | None = None, offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
) -> list[OverlapOut]:
    """Overlaps: every partner's (admin, partner manager) or the caller's partner's own."""
    scope = _partner_scope(principal, partner_id)
    shown = partner_view(ctx, scope).overlaps if principal.role == PARTNER and scope else None
    with ctx.workspace.store.engine.connect() as conn:
        rows = overlaps_page(conn, scope, with_accounts=principal.role != PARTNER,
                             offset=offset, limit=limit, visible=shown)
    return [
        OverlapOut(
            account_id=r.account_id or None, account_name=r.account_name,
            partner_id=r.partner_id, partner_account_id=r.partner_account_id,
            partner_account_name=r.partner_account_name, relationship=r.relationship,
            method=r.method, probability=r.probability,
        )
        for r in rows
    ]


@router.get("/warmth-checks")
def list_warmth_checks(
    ctx: Context,
    principal: StaffOrPartner,
    status: Literal["open", "answered", "all"] = "open",
    partner_id: str | None = None,
    offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
) -> list[WarmthCheckOut]:
    """The qualify stage's warmth checks: a partner sees only its own."""
    scope = _partner_scope(principal, partner_id)
    wanted = {"open": OPEN, "answered": ANSWERED, "all": None}[status]
    shown = partner_view(ctx, scope).checks if principal.role == PARTNER and scope else None
    with ctx.workspace.store.engine.connect() as conn:
        checks = warmth_checks(conn, scope, status=wanted, offset=offset, limit=limit,
                               visible=shown)
    return [WarmthCheckOut.model_validate(c, from_attributes=True) for c in checks]


@router.get("/warmth-answers")
def list_warmth_answers(
    ctx: Context, principal: StaffOrPartner, partner_id: str | None = None, offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
) -> list[WarmthAnswerOut]:
    """Stored warmth answers, newest first: a partner sees only its own."""
    scope = _partner_scope(principal, partner_id)
    with ctx.workspace.store.engine.connect() as conn:
        answers = warmth_answers(conn, scope, offset=offset, limit=limit)
    return [WarmthAnswerOut.model_validate(a, from_attributes=True) for a in answers]


@router.post("/warmth-answers", status_code=201)
def post_warmth_answer(
    ctx: Context, principal: PartnerUser, body: WarmthAnswerIn
) -> WarmthAnswerOut:
    """Answer one of the caller's partner's warmth checks; the next qualify run uses it."""
    assert principal.partner_id is not None
    try:
        stored = answer_warmth_check(ctx.workspace, principal.partner_id,
                                     body.partner_account_id, body.answer, note=body.note,
                                     answered_by=principal.email)
    except WarmthCheckNotFound as exc:
        raise HTTPException(404, "there is no such warmth check.") from exc
    except InvalidAnswer as exc:
        raise HTTPException(422, str(exc)) from exc
    ctx.snapshots.invalidate()
    return WarmthAnswerOut.model_validate(stored, from_attributes=True)


@router.get("/partners/{partner_id}/scorecard")
def get_scorecard(ctx: Context, principal: StaffOrPartner, partner_id: str) -> ScorecardOut:
    """A partner's scorecard (a partner may read only its own)."""
    _partner_scope(principal, partner_id)
    with ctx.workspace.store.engine.connect() as conn:
        if not partner_exists(conn, partner_id):
            raise HTTPException(404, f"there is no partner {partner_id}.")
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    card = None
    if snapshot is not None:
        # a partner gets the card of what it may see; our own people the whole card
        card = (partner_scorecard(ctx, partner_view(ctx, partner_id))
                if principal.role == PARTNER else snapshot.scorecards.get(partner_id))
    if card is None:
        raise HTTPException(503, "the scorecards are being computed; retry shortly.",
                            headers={"Retry-After": "5"})
    return _scorecard_out(card, ctx.share_amounts)


@router.get("/report")
def get_report(ctx: Context, principal: Staff) -> dict[str, Any]:
    """The measurement report (as `doorstep report --json`), from the latest snapshot."""
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    if snapshot is None:
        raise HTTPException(503, "the report is being computed; retry shortly.",
                            headers={"Retry-After": "5"})
    return {"computed_at": snapshot.computed_at.isoformat(), **report_json(snapshot.report)}


# --- partner exchange (another doorstep install; authenticated by its signature, not a user) --


def _exchange(ctx: AppContext, serve: Any, message: dict[str, Any]) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = serve(ctx.workspace, message)
    except ShareError as exc:
        raise HTTPException(403, str(exc)) from exc
    return answer


@router.post("/share/psi")
def post_share_psi(ctx: Context, message: dict[str, Any]) -> dict[str, Any]:
    """A linked partner install's private-set-intersection request (a signed message)."""
    return _exchange(ctx, serve_psi, message)


@router.post("/share/fields")
def post_share_fields(ctx: Context, message: dict[str, Any]) -> dict[str, Any]:
    """A linked partner install asks for the shared fields of the records in common."""
    return _exchange(ctx, serve_fields, message)


@router.post("/share/bundle")
def post_share_bundle(ctx: Context, message: dict[str, Any]) -> dict[str, Any]:
    """A linked partner install sends its bundle and receives ours (an online exchange)."""
    return _exchange(ctx, exchange_bundles, message)
