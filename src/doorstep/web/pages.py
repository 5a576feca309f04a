"""The web pages: sign-in, dashboard, leads, rep queue, partner portal and settings.

Each route checks the role, calls one library function and renders a template. A record
outside the caller's scope answers 404, exactly as if it did not exist.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from doorstep.act import REJECT_REASONS, LeadActionError, reassign_lead
from doorstep.feedback import (
    ANSWERS,
    InvalidAnswer,
    WarmthCheckNotFound,
    answer_warmth_check,
    partner_digest,
    surfaced_lead,
    surfaced_leads_page,
    warmth_checks,
    write_digest_csv,
)
from doorstep.feedback.digest import OUTCOME_LABELS, conversion_text
from doorstep.feedback.warmth import ANSWER_MEANINGS, CHECK_AGES
from doorstep.ingest.contract import RELATIONSHIPS
from doorstep.lifecycle import ACTION_LABELS, EQL, STATUSES
from doorstep.measure import format as fmt
from doorstep.measure.format import pct
from doorstep.measure.model import DOORSTEP
from doorstep.track import lead_history
from doorstep.web import charts
from doorstep.web.auth import (
    ADMIN,
    PARTNER,
    REP,
    ROLES,
    STAFF,
    Principal,
    SignInLocked,
    UserError,
    add_user,
    authenticate,
    csrf_matches,
    end_sessions,
    list_users,
    new_csrf_token,
    set_active,
)
from doorstep.web.deps import (
    CSRF_FIELD,
    AppContext,
    Context,
    app_context,
    client_address,
    current_principal,
    cursor_of,
    now,
    parse_cursor,
    require,
    session_data,
    write_session,
)
from doorstep.web.notices import FLASH, flash, notice_text
from doorstep.web.queries import (
    GATE_NAMES,
    LEAD_SORTS,
    MAX_OFFSET,
    PAGE_SIZE,
    LeadFilters,
    LeadView,
    account_matches,
    account_related,
    active_reps,
    find_leads,
    overdue_motions,
    partner_exists,
    partner_names,
    rep_queue,
)
from doorstep.web.scope import (
    DONE_WORDS,
    OutOfScope,
    lead_in_scope,
    owner_action,
    partner_scorecard,
    partner_view,
)

router = APIRouter(include_in_schema=False)

Staff = Annotated[Principal, Depends(require(*STAFF))]
RepUser = Annotated[Principal, Depends(require(REP))]
PartnerUser = Annotated[Principal, Depends(require(PARTNER))]
AdminUser = Annotated[Principal, Depends(require(ADMIN))]
StaffOrRep = Annotated[Principal, Depends(require(*STAFF, REP))]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
PORTAL_PAGE = 20

HOME = {"admin": "/dashboard", "partner_manager": "/dashboard", "rep": "/queue",
        "partner": "/portal"}


def render(
    request: Request,
    ctx: AppContext,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render a page with what every page needs: the user, the CSRF token, the helpers."""
    session = session_data(request)
    csrf = principal.csrf if principal is not None else session.get("c")
    text, is_problem = notice_text(request.query_params.get("notice"), session.get(FLASH))
    context = {
        "user": principal,
        "csrf_token": csrf,
        "csrf_field": CSRF_FIELD,
        "pct": pct,
        "action_labels": ACTION_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "notice": None if is_problem else text,
        "problem": text if is_problem else None,
        **values,
    }
    response = ctx.templates.TemplateResponse(request, template, context,
                                              status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if FLASH in session:  # details are for one page only
        session.pop(FLASH)
        write_session(request, response, session)
    return response


def redirect(path: str, **params: str) -> RedirectResponse:
    """A 303 redirect to one of our own paths, with query parameters."""
    query = ("&" if "?" in path else "?") + urlencode(params) if params else ""
    return RedirectResponse(path + query, status_code=303)


def tell(request: Request, path: str, code: str, **details: str) -> RedirectResponse:
    """A redirect to `path` whose page shows the notice `code`; its details ride in the
    session, never in the URL."""
    response = redirect(path, notice=code)
    session = session_data(request)
    if details and session:
        write_session(request, response, {**session, FLASH: flash(code, details)})
    return response


def _local(path: str | None) -> str | None:
    """`path` when it is a path on this site (not another site's URL), else None."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


# --- signing in and out -----------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, ctx: Context, next: str | None = None) -> Response:
    """The sign-in form; it starts an anonymous session to carry the form's CSRF token."""
    principal = current_principal(request)
    if principal is not None:
        return redirect(_local(next) or HOME[principal.role])
    data = session_data(request)
    fresh = not data.get("c")
    if fresh:
        data = {"c": new_csrf_token()}
        request.state.session = data
    response = render(request, ctx, "login.html", None, next=_local(next) or "")
    if fresh:
        write_session(request, response, data)
    return response


@router.post("/login")
def login(
    request: Request,
    ctx: Context,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password, then start a new session with a new CSRF token."""
    if not csrf_matches(session_data(request).get("c"), csrf_token):
        raise HTTPException(403, "the sign-in form is out of date; reload it and try again.")
    try:
        found = authenticate(ctx.workspace.store, email, password, client=client_address(request))
    except SignInLocked as exc:
        return render(request, ctx, "login.html", None, status_code=429, next=_local(next) or "",
                      error=f"{str(exc)[0].upper()}{str(exc)[1:]}.", email=email)
    if found is None:
        return render(request, ctx, "login.html", None, status_code=401, next=_local(next) or "",
                      error="Wrong email or password.", email=email)
    principal, stamp = found
    response = redirect(_local(next) or HOME[principal.role])
    write_session(request, response, {"u": principal.user_id, "s": stamp, "c": new_csrf_token()})
    return response


@router.post("/logout")
def logout(
    request: Request, ctx: Context, principal: Annotated[Principal, Depends(require(*ROLES))]
) -> Response:
    """End the session, on the server too: a saved cookie opens nothing any more (the user's
    other sessions end with it)."""
    end_sessions(ctx.workspace.store, principal.user_id)
    response = redirect("/login", notice="signed_out")
    write_session(request, response, None)
    return response


@router.get("/")
def home(principal: Annotated[Principal, Depends(require(*ROLES))]) -> Response:
    """Each role's main page."""
    return redirect(HOME[principal.role])


# --- dashboard (admin, partner manager) -----------------------------------------------------------


@router.get("/dashboard")
def dashboard(request: Request, ctx: Context, principal: Staff, offset: Offset = 0) -> Response:
    """Funnel, EQL vs MQL, overlap matrix, partner scorecards and overdue motions."""
    return ctx.pages.answer(request, principal,
                            lambda: _dashboard(request, ctx, principal, offset))


def _dashboard(request: Request, ctx: AppContext, principal: Principal, offset: int) -> Response:
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    with ctx.workspace.store.engine.connect() as conn:
        overdue = overdue_motions(conn, now(), offset=offset, limit=20)
    values: dict[str, Any] = {"snapshot": snapshot, "overdue": overdue, "offset": offset,
                              "error": ctx.snapshots.error}
    if snapshot is not None:
        report = snapshot.report
        mql = report.mql
        mql_rate = mql.rate if mql else None
        top = [(t, c) for t, c in report.lead_types.items() if ":" not in t]
        eql = report.lead_types.get(EQL)
        names = {pid: card.partner_name for pid, card in snapshot.scorecards.items()}
        # The same figure as each partner's scorecard below: doorstep EQLs it surfaced.
        partners = [
            (f"{card.partner_id} {card.partner_name}", card.conversion)
            for card in snapshot.scorecards.values() if card.conversion is not None
        ]
        values.update(
            verdict=report.eql_vs_mql,
            eql_text=fmt.eql_sentence(eql.leads if eql else 0, eql, mql_rate),
            mql=mql,
            funnel_svg=charts.funnel_chart(report.funnel, mql_rate),
            types_svg=charts.conversion_chart(top, mql_rate, title="Conversion by lead type"),
            matrix_svg=charts.matrix_chart(snapshot.matrix, names),
            partners_svg=charts.conversion_chart(
                partners, mql_rate, title=f"EQLs surfaced by each partner ({DOORSTEP}), measured"
            ),
            cards=list(snapshot.scorecards.values()),
            conversion_text=conversion_text,
            eql_label=fmt.eql_sentence,
        )
    return render(request, ctx, "dashboard.html", principal, **values)


@router.post("/dashboard/refresh")
def refresh_dashboard(ctx: Context, principal: Staff) -> Response:
    """Recompute the dashboard's numbers now."""
    ctx.snapshots.invalidate()
    ctx.snapshots.refresh()
    return redirect("/dashboard", notice="recomputing")


@router.get("/leads")
def leads(
    request: Request, ctx: Context, principal: Staff, offset: Offset = 0,
    q: Annotated[str, Query(max_length=200)] = "", status: str = "", owner: str = "",
    partner: str = "", gate: str = "", sort: str = "lead", desc: bool = False,
) -> Response:
    """Every lead, a page at a time: searched by account or partner name, filtered by owner,
    partner, status and failed gate, sorted by any column; page links keep all of it."""
    filters = LeadFilters(q=q.strip(), status=status, owner=owner, partner=partner,
                          gate=gate if gate in GATE_NAMES else "")
    sort = sort if sort in LEAD_SORTS else "lead"
    with ctx.workspace.store.engine.connect() as conn:
        rows = find_leads(conn, now(), filters, sort=sort, descending=desc, offset=offset,
                          limit=PAGE_SIZE + 1)
        reps = active_reps(conn)
        partners = partner_names(conn)
    return render(request, ctx, "leads.html", principal, leads=rows[:PAGE_SIZE],
                  more=len(rows) > PAGE_SIZE, offset=offset, filters=filters, sort=sort,
                  desc=desc, reps=reps, partners=partners, gates=GATE_NAMES,
                  statuses=STATUSES)


def _lead_in_scope(ctx: AppContext, principal: Principal, lead_id: str) -> LeadView:
    """The lead if the caller may see it; 404 otherwise, as if it did not exist."""
    try:
        return lead_in_scope(ctx, principal, lead_id)
    except OutOfScope as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/leads/{lead_id}")
def lead_page(request: Request, ctx: Context, principal: StaffOrRep, lead_id: str) -> Response:
    """One lead: the four gates' evidence, partner path, warmth, motion and history."""
    lead = _lead_in_scope(ctx, principal, lead_id)
    with ctx.workspace.store.engine.connect() as conn:
        history = lead_history(conn, lead_id)
        matches = account_matches(conn, lead.account_id)
        related = account_related(conn, lead.account_id)
        reps = active_reps(conn) if principal.is_staff else {}
    return render(request, ctx, "lead.html", principal, lead=lead, history=history,
                  matches=matches, related=related, reasons=REJECT_REASONS, reps=reps)


# --- rep queue ---------------------------------------------------------------------------------


@router.get("/queue")
def queue(
    request: Request, ctx: Context, principal: StaffOrRep, offset: Offset = 0,
    rep: str | None = None,
) -> Response:
    """The leads routed to a rep and not finished, soonest deadline first: a rep's own, or for
    admins and partner managers, any rep's (`?rep=`), with a way to reassign each lead."""
    if principal.role == REP and rep not in (None, "", principal.rep_id):
        raise HTTPException(404, "there is no such queue.")
    return ctx.pages.answer(request, principal,
                            lambda: _queue(request, ctx, principal, offset, rep or None))


def _queue(request: Request, ctx: AppContext, principal: Principal, offset: int,
           rep: str | None) -> Response:
    whose = principal.rep_id if principal.role == REP else rep
    with ctx.workspace.store.engine.connect() as conn:
        reps = active_reps(conn)
        rows = (rep_queue(conn, whose, now(), offset=offset, limit=PAGE_SIZE + 1)
                if whose else [])
    if whose and principal.role != REP and whose not in reps:
        raise HTTPException(404, f"there is no active rep {whose}.")
    return render(request, ctx, "queue.html", principal, leads=rows[:PAGE_SIZE],
                  more=len(rows) > PAGE_SIZE, offset=offset, reasons=REJECT_REASONS,
                  whose=whose, reps=reps)


@router.post("/leads/{lead_id}/reassign")
def reassign(
    request: Request, ctx: Context, principal: Staff, lead_id: str,
    owner_id: Annotated[str, Form()],
) -> Response:
    """Give a lead to another rep: an event, and the new owner's message on the next act run."""
    back = f"/queue?rep={quote(owner_id.strip())}"
    try:
        reassign_lead(ctx.workspace, lead_id, owner_id.strip(), actor=principal.email)
    except LeadActionError as exc:
        return tell(request, f"/leads/{quote(lead_id)}", "lead_refused", reason=str(exc))
    ctx.snapshots.invalidate()
    return tell(request, back, "lead_reassigned", lead_id=lead_id, owner_id=owner_id.strip())


def _rep_action(request: Request, ctx: AppContext, principal: Principal, lead_id: str, kind: str,
                reason: str = "", note: str = "") -> Response:
    try:
        owner_action(ctx, principal, lead_id, kind, reason=reason, note=note)
    except OutOfScope as exc:
        raise HTTPException(404, str(exc)) from exc
    except LeadActionError as exc:
        return tell(request, "/queue", "lead_refused", reason=str(exc))
    return tell(request, "/queue", "lead_done", lead_id=lead_id, done=DONE_WORDS[kind])


@router.post("/leads/{lead_id}/accept")
def accept(request: Request, ctx: Context, principal: RepUser, lead_id: str) -> Response:
    """The rep takes the lead on (an event, through the act stage)."""
    return _rep_action(request, ctx, principal, lead_id, "accept")


@router.post("/leads/{lead_id}/reject")
def reject(
    request: Request,
    ctx: Context,
    principal: RepUser,
    lead_id: str,
    reason: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The rep turns the lead down with a reason (an event, through the act stage)."""
    return _rep_action(request, ctx, principal, lead_id, "reject", reason, note)


@router.post("/leads/{lead_id}/intro-made")
def intro_made(request: Request, ctx: Context, principal: RepUser, lead_id: str) -> Response:
    """The partner introduced the rep (an event, through the act stage)."""
    return _rep_action(request, ctx, principal, lead_id, "intro")


# --- partner portal ------------------------------------------------------------------------------


def _portal(
    request: Request, ctx: AppContext, principal: Principal, partner_id: str,
    before: str | None, checks_offset: int, editable: bool,
    relationship: str | None = None, age: str | None = None,
) -> Response:
    relationship = relationship if relationship in RELATIONSHIPS else None
    age = age if age in CHECK_AGES else None
    snapshot = ctx.snapshots.get(wait=ctx.snapshot_wait)
    opportunities = snapshot.opportunities if snapshot is not None else {}
    view = partner_view(ctx, partner_id)  # what the partner may see: the level in force
    card = partner_scorecard(ctx, view)
    with ctx.workspace.store.engine.connect() as conn:
        name = partner_names(conn, [partner_id]).get(partner_id, partner_id)
        checks = warmth_checks(conn, partner_id, offset=checks_offset, limit=PORTAL_PAGE + 1,
                               visible=view.checks, relationship=relationship, age=age,
                               now=now())
        answered = warmth_checks(conn, partner_id, status="answered", limit=20,
                                 visible=view.checks)
        outcomes = surfaced_leads_page(conn, partner_id, opportunities=opportunities,
                                       visible=view.leads,
                                       amounts=ctx.share_amounts, before=parse_cursor(before),
                                       limit=PORTAL_PAGE + 1)
    return render(
        request, ctx, "portal.html", principal,
        partner_id=partner_id, partner_name=name, editable=editable,
        checks=checks[:PORTAL_PAGE], more_checks=len(checks) > PORTAL_PAGE,
        checks_offset=checks_offset, answered=answered,
        outcomes=outcomes[:PORTAL_PAGE], before=before or "",
        next_before=cursor_of(outcomes[PORTAL_PAGE - 1]) if len(outcomes) > PORTAL_PAGE else "",
        page_size=PORTAL_PAGE,
        card=card, card_svg=charts.scorecard_chart(card) if card else "",
        conversion=conversion_text(card.conversion, card.mql_rate) if card else "",
        answers=ANSWERS, meanings=ANSWER_MEANINGS, ages=CHECK_AGES,
        relationships=RELATIONSHIPS, relationship=relationship or "", age=age or "",
        share_amounts=ctx.share_amounts, computing=snapshot is None,
    )


@router.get("/portal")
def portal(
    request: Request, ctx: Context, principal: PartnerUser, before: str | None = None,
    checks_offset: Offset = 0, relationship: str | None = None, age: str | None = None,
) -> Response:
    """This partner's warmth checks to answer (filtered by relationship and age), the outcome
    of every lead it surfaced, its card."""
    assert principal.partner_id is not None
    return _portal(request, ctx, principal, principal.partner_id, before, checks_offset, True,
                   relationship, age)


@router.post("/portal/warmth/bulk")
def answer_warmth_bulk(
    request: Request,
    ctx: Context,
    principal: PartnerUser,
    answer: Annotated[str, Form()],
    partner_account_id: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """One answer to every ticked warmth check at once."""
    assert principal.partner_id is not None
    ticked = list(dict.fromkeys(partner_account_id or []))
    if not ticked:
        return tell(request, "/portal", "answer_refused",
                    reason="tick the accounts to answer first.")
    refused = _save_answers(request, ctx, principal, ticked, answer, note)
    saved = f"{len(ticked):,} {'answer' if len(ticked) == 1 else 'answers'}"
    return refused or tell(request, "/portal", "answers_saved", answers=saved,
                           answer=answer.strip().lower())


def _save_answers(request: Request, ctx: AppContext, principal: Principal, accounts: list[str],
                  answer: str, note: str) -> Response | None:
    """Store this partner's answer on each of `accounts`; the page to show when refused (a
    check it does not have is a 404, as if it did not exist), else None."""
    assert principal.partner_id is not None
    for account in accounts:
        try:
            answer_warmth_check(ctx.workspace, principal.partner_id, account, answer,
                                note=note, answered_by=principal.email)
        except WarmthCheckNotFound as exc:
            raise HTTPException(404, "there is no such warmth check.") from exc
        except InvalidAnswer as exc:
            return tell(request, "/portal", "answer_refused", reason=str(exc))
    ctx.snapshots.invalidate()
    return None


@router.get("/portal/leads/{lead_id}")
def portal_lead(
    request: Request, ctx: Context, principal: PartnerUser, lead_id: str
) -> Response:
    """What became of one lead this partner surfaced: each step with its date."""
    assert principal.partner_id is not None
    snapshot = ctx.snapshots.get()
    view = partner_view(ctx, principal.partner_id)
    with ctx.workspace.store.engine.connect() as conn:
        lead = surfaced_lead(conn, principal.partner_id, lead_id,
                             opportunities=snapshot.opportunities if snapshot else {},
                             amounts=ctx.share_amounts, visible=view.leads)
    if lead is None:
        raise HTTPException(404, "there is no such lead.")
    return render(request, ctx, "portal_lead.html", principal, lead=lead,
                  share_amounts=ctx.share_amounts)


@router.post("/portal/warmth")
def answer_warmth(
    request: Request,
    ctx: Context,
    principal: PartnerUser,
    partner_account_id: Annotated[str, Form()],
    answer: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    """Store this partner's answer to one of its warmth checks, for the next qualify run."""
    refused = _save_answers(request, ctx, principal, [partner_account_id], answer, note)
    return refused or tell(request, "/portal", "answer_saved",
                           partner_account_id=partner_account_id)


@router.get("/portal/outcomes.csv")
def outcomes_csv(ctx: Context, principal: PartnerUser) -> Response:
    """Every lead this partner surfaced and what became of it, as CSV."""
    assert principal.partner_id is not None
    snapshot = ctx.snapshots.get()
    digest = partner_digest(ctx.workspace, principal.partner_id,
                            report=snapshot.report if snapshot else None,
                            amounts=ctx.share_amounts)
    out = io.StringIO()
    write_digest_csv(digest, out)
    filename = quote(f"doorstep-{principal.partner_id}-outcomes.csv")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={filename}",
                             "Cache-Control": "no-store"})


@router.get("/partners/{partner_id}")
def partner_page(
    request: Request, ctx: Context, principal: Staff, partner_id: str,
    before: str | None = None, checks_offset: Offset = 0,
) -> Response:
    """One partner's portal as the partner sees it, read-only, for our own people."""
    with ctx.workspace.store.engine.connect() as conn:
        if not partner_exists(conn, partner_id):
            raise HTTPException(404, f"there is no partner {partner_id}.")
    return _portal(request, ctx, principal, partner_id, before, checks_offset, False)


# --- settings (admin) ----------------------------------------------------------------------------


@router.get("/settings")
def settings(request: Request, ctx: Context, principal: AdminUser) -> Response:
    """The users and their roles; add a user."""
    return render(request, ctx, "settings.html", principal,
                  users=list_users(ctx.workspace.store), roles=ROLES)


@router.post("/settings/users")
def settings_add_user(
    request: Request,
    ctx: Context,
    principal: AdminUser,
    email: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
    partner_id: Annotated[str, Form()] = "",
    rep_id: Annotated[str, Form()] = "",
) -> Response:
    """Add a user, or change an existing user's role, scope and password."""
    try:
        user, created = add_user(ctx.workspace.store, email, role, password,
                                 partner_id=partner_id.strip() or None,
                                 rep_id=rep_id.strip() or None)
    except UserError as exc:
        return tell(request, "/settings", "user_refused", reason=str(exc))
    verb = "added" if created else "updated"
    return tell(request, "/settings", "user_saved", email=user.email, verb=verb)


@router.post("/settings/users/active")
def settings_set_active(
    request: Request,
    ctx: Context,
    principal: AdminUser,
    email: Annotated[str, Form()],
    active: Annotated[bool, Form()],
) -> Response:
    """Deactivate a user (ending their sessions and tokens) or activate them again."""
    if email.strip().lower() == principal.email and not active:
        return redirect("/settings", notice="cannot_deactivate_self")
    try:
        set_active(ctx.workspace.store, email, active)
    except UserError as exc:
        return tell(request, "/settings", "user_refused", reason=str(exc))
    state = "activated" if active else "deactivated"
    return tell(request, "/settings", "user_state", email=email, state=state)


def not_found_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    """An error page in the app's layout."""
    ctx = app_context(request)
    principal = getattr(request.state, "principal", None)
    return render(request, ctx, "error.html", principal, status_code=status_code,
                  status=status_code, detail=detail)

