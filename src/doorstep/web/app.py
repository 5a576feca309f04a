"""The web app: one FastAPI application over one workspace, pages and API on the same roles."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from doorstep.feedback import share_amounts
from doorstep.web import api, pages
from doorstep.web.auth import SessionCodec, session_secret
from doorstep.web.deps import AppContext, NotSignedIn
from doorstep.web.pagecache import PageCache
from doorstep.web.snapshot import SnapshotCache, snapshot_folder
from doorstep.workspace import open_workspace

# At shutdown, how long to let a dashboard computation finish before closing the store.
SHUTDOWN_WAIT_SECONDS = 120.0
HERE = Path(__file__).parent
# Pages draw inline SVG and load only our own CSS and JS: nothing from another origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "sign in: send Authorization: Bearer TOKEN (doorstep user token)."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _is_api(request) or request.method not in ("GET", "POST"):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)
    try:
        return pages.not_found_page(request, exc.status_code, str(exc.detail))
    except Exception:  # noqa: BLE001 - an error page must never fail itself
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _is_api(request):
        # where and what, never the input itself: it may be bytes, or someone's data
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    return pages.not_found_page(request, 422, "the request's values are not valid.")


def _with_security_headers(request: Request, response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.url.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    return _with_security_headers(request, await call_next(request))


async def _server_error(request: Request, exc: Exception) -> Response:
    """A failure nobody foresaw: a plain 500 that says nothing of the cause, with the same
    security headers as every other answer (it is sent from outside the middleware)."""
    detail = "the server could not answer this request; try again, or tell the administrator."
    response: Response = (
        JSONResponse({"detail": detail}, status_code=500) if _is_api(request)
        else PlainTextResponse(detail, status_code=500)
    )
    return _with_security_headers(request, response)


def create_app(
    workspace_path: Path | str,
    *,
    snapshot_ttl: float = 300.0,
    snapshot_wait: float = 5.0,
    warm_up: bool = True,
) -> FastAPI:
    """The web app over the workspace at `workspace_path`.

    The dashboard's numbers are computed in the background (`snapshot_ttl` seconds apart) and a
    page waits at most `snapshot_wait` seconds for the first; `warm_up` starts them at startup.
    """
    workspace = open_workspace(workspace_path)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    # The templates ship with the package: never look at their files again once compiled.
    templates.env.auto_reload = False
    context = AppContext(
        workspace=workspace,
        sessions=SessionCodec(session_secret(workspace.path)),
        snapshots=SnapshotCache(workspace, ttl_seconds=snapshot_ttl,
                                shared=snapshot_folder(workspace)),
        templates=templates,
        share_amounts=share_amounts(workspace.config),
        snapshot_wait=snapshot_wait,
        pages=PageCache(max_age=workspace.config.web.page_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm_up:
            context.snapshots.refresh()
        yield
        context.snapshots.wait_idle(timeout=SHUTDOWN_WAIT_SECONDS)
        workspace.store.engine.dispose()

    app = FastAPI(
        title="doorstep",
        summary="Ecosystem-qualified leads: dashboard, rep queue, partner portal and API.",
        version="0.1.0",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; /openapi.json is the contract
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.doorstep = context
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _server_error)
    app.middleware("http")(_security_headers)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


WORKSPACE_ENV = "DOORSTEP_WORKSPACE"


def app_from_environment() -> FastAPI:
    """The app over the workspace named by DOORSTEP_WORKSPACE: what each process of
    `doorstep serve --workers N` runs."""
    return create_app(os.environ[WORKSPACE_ENV])
