"""What every route depends on: the app's context, the signed-in user, their role, CSRF."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.templating import Jinja2Templates

from doorstep.feedback import SurfacedLead
from doorstep.web.auth import (
    SESSION_MAX_AGE,
    Principal,
    SessionCodec,
    csrf_matches,
    principal_for_session,
    principal_for_token,
)
from doorstep.web.pagecache import PageCache
from doorstep.web.snapshot import SnapshotCache
from doorstep.workspace import Workspace

SESSION_COOKIE = "doorstep_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppContext:
    """The workspace a running app serves, and what it keeps between requests."""

    workspace: Workspace
    sessions: SessionCodec
    snapshots: SnapshotCache
    templates: Jinja2Templates
    share_amounts: bool
    snapshot_wait: float
    pages: PageCache = field(default_factory=PageCache)


class NotSignedIn(Exception):
    """The request names no valid session or token."""


def app_context(request: Request) -> AppContext:
    """The running app's context."""
    context: AppContext = request.app.state.doorstep
    return context


def now() -> datetime:
    """The current time as a naive UTC datetime, as the store keeps times."""
    return datetime.now(UTC).replace(tzinfo=None)


def client_address(request: Request) -> str:
    """The address a request came from: the peer, or behind a reverse proxy that uvicorn trusts
    (`--forwarded-allow-ips`), the client the proxy names."""
    return request.client.host if request.client else "unknown"


def session_data(request: Request) -> dict[str, Any]:
    """The session cookie's checked contents (empty when absent or forged)."""
    cached = getattr(request.state, "session", None)
    if cached is None:
        cached = app_context(request).sessions.load(request.cookies.get(SESSION_COOKIE))
        request.state.session = cached
    return dict(cached)


def write_session(request: Request, response: Response, data: dict[str, Any] | None) -> None:
    """Set (or, with None, clear) the session cookie: signed, HttpOnly, SameSite=Lax, and Secure
    when the request came over https."""
    secure = request.url.scheme == "https"
    if data is None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True,
                               samesite="lax")
        return
    response.set_cookie(
        SESSION_COOKIE,
        app_context(request).sessions.dump(data),
        max_age=SESSION_MAX_AGE,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def current_principal(request: Request) -> Principal | None:
    """The user behind a Bearer token or the session cookie, or None."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    store = app_context(request).workspace.store
    header = request.headers.get("authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            principal = principal_for_token(store, token.strip())
    else:
        data = session_data(request)
        user_id, stamp = data.get("u"), data.get("s")
        if isinstance(user_id, int) and isinstance(stamp, str):
            principal = principal_for_session(store, user_id, stamp, data.get("c"))
    request.state.principal = principal
    return principal


async def check_csrf(request: Request, principal: Principal) -> None:
    """Refuse an unsafe request made with a session cookie that lacks the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.via != "session":
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_matches(principal.csrf, given):
        raise HTTPException(403, "the form's CSRF token is missing or out of date; reload the "
                                 "page and try again.")


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets in only signed-in users with one of `roles` (and checks CSRF)."""

    async def dependency(
        request: Request,
        principal: Annotated[Principal | None, Depends(current_principal)],
    ) -> Principal:
        if principal is None:
            raise NotSignedIn()
        if principal.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}.")
        await check_csrf(request, principal)
        return principal

    return dependency


Context = Annotated[AppContext, Depends(app_context)]


def cursor_of(lead: SurfacedLead) -> str:
    """The cursor that pages past this lead in a partner's list: "updated_at|lead_id"."""
    return f"{lead.updated_at.isoformat()}|{lead.lead_id}"


def parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (updated_at, lead_id) a cursor names; 422 when it names nothing."""
    if not cursor:
        return None
    at, sep, lead_id = cursor.partition("|")
    try:
        if not sep or not lead_id:
            raise ValueError(cursor)
        return datetime.fromisoformat(at), lead_id
    except ValueError as exc:
        raise HTTPException(422, "the page cursor is not valid.") from exc
