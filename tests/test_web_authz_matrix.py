"""Every route × every role, and a second rep and partner: the status each gets, and that no
body ever carries another partner's (or another rep's) records. Out of scope answers 404."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_feedback import LOST_AMOUNT, WEB_WORLD, WON_AMOUNT, fresh_web_world
from test_web_auth import QUICK_HASHER, USERS, add_users, make_app, sign_in

from doorstep.store.models import Lead, LeadEvent, User, WarmthAnswer
from doorstep.web import api, auth, pages
from doorstep.web.auth import issue_token
from doorstep.web.snapshot import SnapshotCache
from doorstep.workspace import Workspace

ANONYMOUS = "anonymous"
ROLES = (ANONYMOUS, *USERS)
STAFF = ("admin", "partner_manager")
REPS = ("rep", "other_rep")
PARTNERS = ("partner", "other_partner")

OUR_ACCOUNT_NAMES = tuple(str(a["name"]) for a in WEB_WORLD["accounts"])
AMOUNTS = tuple(
    text for amount in (WON_AMOUNT, LOST_AMOUNT)
    for text in (f"{amount:.0f}", f"{amount:,.0f}")
)
P1_RECORDS = ("Cloudway", "NORTHWIND", "REDROCK", "GREENFIELD", "IRONCLAD", "L-a1", "L-a3",
              "L-a5", "L-a7", "kim@cloudway")
P2_RECORDS = ("Datastack", "BLUEPEAK", "SILVERLINE", "BLUEWATER", "L-a2", "L-a4", "L-a6",
              "lee@datastack")
# What must never appear in a body served to each role (staff see everything).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "partner": (*P2_RECORDS, *OUR_ACCOUNT_NAMES, *AMOUNTS, "Lovelace", "Bea Brown", "L-a5",
                "L-a7"),
    "other_partner": (*P1_RECORDS, *OUR_ACCOUNT_NAMES, *AMOUNTS, "Lovelace", "Bea Brown",
                      "L-a6"),
    "rep": ("L-a2", "L-a4", "Bluepeak Logistics", "Silverline Foods"),
    "other_rep": ("L-a1", "L-a3", "Northwind Analytics", "Redrock Mining"),
}


def expect(default: int, anonymous: int, **by_role: int) -> dict[str, int]:
    """The status each role gets: `default`, except the roles named (staff= sets both staff)."""
    result = dict.fromkeys(ROLES, default)
    result[ANONYMOUS] = anonymous
    for name, status in by_role.items():
        group = {"staff": STAFF, "reps": REPS, "partners": PARTNERS}.get(name, (name,))
        for role in group:
            result[role] = status
    return result


@dataclass(frozen=True)
class Case:
    """One request: method, the route's template, the concrete URL, a body, expected statuses."""

    method: str
    route: str
    url: str
    statuses: dict[str, int]
    form: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None

    @property
    def api(self) -> bool:
        return self.url.startswith("/api/")


PAGE, API = 303, 401  # what an anonymous caller gets
GETS = [
    Case("GET", "/", "/", expect(303, PAGE)),
    Case("GET", "/dashboard", "/dashboard", expect(403, PAGE, staff=200)),
    Case("GET", "/leads", "/leads", expect(403, PAGE, staff=200)),
    Case("GET", "/leads/{lead_id}", "/leads/L-a1",
         expect(403, PAGE, staff=200, rep=200, other_rep=404)),
    Case("GET", "/leads/{lead_id}", "/leads/L-a4",
         expect(403, PAGE, staff=200, rep=404, other_rep=200)),
    Case("GET", "/leads/{lead_id}", "/leads/L-zz", expect(403, PAGE, staff=404, reps=404)),
    Case("GET", "/queue", "/queue", expect(403, PAGE, reps=200, staff=200)),
    Case("GET", "/queue", "/queue?rep=r2", expect(403, PAGE, staff=200, rep=404, other_rep=200)),
    Case("GET", "/queue", "/queue?rep=r9", expect(403, PAGE, staff=404, reps=404)),
    Case("GET", "/portal", "/portal", expect(403, PAGE, partners=200)),
    Case("GET", "/portal/outcomes.csv", "/portal/outcomes.csv", expect(403, PAGE, partners=200)),
    Case("GET", "/portal/leads/{lead_id}", "/portal/leads/L-a1",
         expect(403, PAGE, partner=200, other_partner=404)),
    Case("GET", "/portal/leads/{lead_id}", "/portal/leads/L-a4",
         expect(403, PAGE, partner=404, other_partner=200)),
    Case("GET", "/portal/leads/{lead_id}", "/portal/leads/L-a5",  # p1's, still being qualified
         expect(403, PAGE, partners=404)),
    Case("GET", "/partners/{partner_id}", "/partners/p1", expect(403, PAGE, staff=200)),
    Case("GET", "/partners/{partner_id}", "/partners/p9", expect(403, PAGE, staff=404)),
    Case("GET", "/settings", "/settings", expect(403, PAGE, admin=200)),
    Case("GET", "/api/me", "/api/me", expect(200, API)),
    Case("GET", "/api/leads", "/api/leads", expect(200, API)),
    Case("GET", "/api/leads", "/api/leads?status=routed&limit=1", expect(200, API)),
    Case("GET", "/api/leads/{lead_id}", "/api/leads/L-a1",
         expect(200, API, other_rep=404, other_partner=404)),
    Case("GET", "/api/leads/{lead_id}", "/api/leads/L-a4",
         expect(200, API, rep=404, partner=404)),
    Case("GET", "/api/leads/{lead_id}", "/api/leads/L-a5",  # p1's, still being qualified
         expect(404, API, staff=200)),
    Case("GET", "/api/leads/{lead_id}/events", "/api/leads/L-a1/events",
         expect(403, API, staff=200, rep=200, other_rep=404)),
    Case("GET", "/api/leads/{lead_id}/events", "/api/leads/L-a4/events",
         expect(403, API, staff=200, rep=404, other_rep=200)),
    Case("GET", "/api/overlaps", "/api/overlaps", expect(403, API, staff=200, partners=200)),
    Case("GET", "/api/overlaps", "/api/overlaps?partner_id=p2",
         expect(403, API, staff=200, partner=404, other_partner=200)),
    Case("GET", "/api/warmth-checks", "/api/warmth-checks?status=all",
         expect(403, API, staff=200, partners=200)),
    Case("GET", "/api/warmth-checks", "/api/warmth-checks?partner_id=p2",
         expect(403, API, staff=200, partner=404, other_partner=200)),
    Case("GET", "/api/warmth-answers", "/api/warmth-answers",
         expect(403, API, staff=200, partners=200)),
    Case("GET", "/api/warmth-answers", "/api/warmth-answers?partner_id=p1",
         expect(403, API, staff=200, partner=200, other_partner=404)),
    Case("GET", "/api/partners/{partner_id}/scorecard", "/api/partners/p1/scorecard",
         expect(403, API, staff=200, partner=200, other_partner=404)),
    Case("GET", "/api/partners/{partner_id}/scorecard", "/api/partners/p2/scorecard",
         expect(403, API, staff=200, partner=404, other_partner=200)),
    Case("GET", "/api/partners/{partner_id}/scorecard", "/api/partners/p9/scorecard",
         expect(404, API, reps=403)),
    Case("GET", "/api/report", "/api/report", expect(403, API, staff=200)),
]

# Requests each role must be refused (the allowed ones are tested below on a fresh world).
REFUSED = [
    Case("POST", "/leads/{lead_id}/accept", "/leads/L-a3/accept",
         expect(403, PAGE, other_rep=404)),
    Case("POST", "/leads/{lead_id}/reject", "/leads/L-a3/reject",
         expect(403, PAGE, other_rep=404), form={"reason": "bad_fit"}),
    Case("POST", "/leads/{lead_id}/intro-made", "/leads/L-a3/intro-made",
         expect(403, PAGE, other_rep=404)),
    Case("POST", "/portal/warmth", "/portal/warmth", expect(403, PAGE, partner=404),
         form={"partner_account_id": "y3", "answer": "strong"}),
    Case("POST", "/portal/warmth/bulk", "/portal/warmth/bulk", expect(403, PAGE, partner=404),
         form={"partner_account_id": "y3", "answer": "strong"}),
    Case("POST", "/settings/users", "/settings/users", expect(403, PAGE),
         form={"email": "intruder@example.com", "role": "admin", "password": "0123456789ab"}),
    Case("POST", "/settings/users/active", "/settings/users/active", expect(403, PAGE),
         form={"email": "admin@example.com", "active": "false"}),
    Case("POST", "/dashboard/refresh", "/dashboard/refresh", expect(403, PAGE)),
    Case("POST", "/leads/{lead_id}/reassign", "/leads/L-a3/reassign", expect(403, PAGE),
         form={"owner_id": "r2"}),
    Case("POST", "/api/leads/{lead_id}/accept", "/api/leads/L-a3/accept",
         expect(403, API, other_rep=404)),
    Case("POST", "/api/leads/{lead_id}/reject", "/api/leads/L-a3/reject",
         expect(403, API, other_rep=404), json={"reason": "bad_fit"}),
    Case("POST", "/api/leads/{lead_id}/intro-made", "/api/leads/L-a3/intro-made",
         expect(403, API, other_rep=404)),
    Case("POST", "/api/warmth-answers", "/api/warmth-answers", expect(403, API, partner=404),
         json={"partner_account_id": "y3", "answer": "strong"}),
    # Partner installs authenticate by signature, not as users: an unsigned body is refused
    # whoever sends it.
    *(Case("POST", path, path, expect(403, 403), json={"kind": "psi_request", "body": {}})
      for path in ("/api/share/psi", "/api/share/fields", "/api/share/bundle")),
]
# Who may make each refused request on their own records (not in the refused matrix).
ALLOWED_ELSEWHERE = {
    "/leads/{lead_id}/accept": ("rep",), "/leads/{lead_id}/reject": ("rep",),
    "/leads/{lead_id}/intro-made": ("rep",), "/portal/warmth": ("other_partner",),
    "/portal/warmth/bulk": ("other_partner",),
    "/settings/users": ("admin",), "/settings/users/active": ("admin",),
    "/dashboard/refresh": STAFF, "/leads/{lead_id}/reassign": STAFF,
    "/api/leads/{lead_id}/accept": ("rep",),
    "/api/leads/{lead_id}/reject": ("rep",), "/api/leads/{lead_id}/intro-made": ("rep",),
    "/api/warmth-answers": ("other_partner",),
    "/api/share/psi": (), "/api/share/fields": (), "/api/share/bundle": (),
}
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("POST", "/logout")}


@dataclass
class Caller:
    """A signed-in client (session cookie and CSRF token) and an API token, for one role."""

    client: TestClient
    csrf: str = ""
    token: str = ""


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters, so tests sign in quickly."""
    monkeypatch.setattr(auth, "_hasher", QUICK_HASHER)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One world for every request that must change nothing."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", QUICK_HASHER)
        folder = tmp_path_factory.mktemp("matrix")
        workspace = fresh_web_world(folder / "ws", f"sqlite:///{folder / 'doorstep.db'}",
                                    tmp_path_factory.getbasetemp(), setup=add_users)
        yield workspace
    workspace.store.engine.dispose()


def _callers(workspace: Workspace) -> Iterator[dict[str, Caller]]:
    app = make_app(workspace)
    with TestClient(app) as anonymous:
        callers = {ANONYMOUS: Caller(anonymous)}
        clients = []
        for role, (email, *_rest) in USERS.items():
            client = TestClient(app)
            clients.append(client)
            callers[role] = Caller(client, sign_in(client, email),
                                   issue_token(workspace.store, email))
        yield callers
        for client in clients:
            client.close()


@pytest.fixture(scope="module")
def callers(shared_world: Workspace) -> Iterator[dict[str, Caller]]:
    """A signed-in client and a token per role, over the shared world."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", QUICK_HASHER)
        yield from _callers(shared_world)


def send(caller: Caller, case: Case, *, with_token: bool) -> Any:
    """Make the request as the caller: pages with the session, the API with the token."""
    headers = {"Authorization": f"Bearer {caller.token}"} if with_token and caller.token else {}
    if case.method == "GET":
        return caller.client.get(case.url, headers=headers, follow_redirects=False)
    if case.json is not None:
        return caller.client.post(case.url, json=case.json, headers=headers,
                                  follow_redirects=False)
    form = {**case.form, "csrf_token": caller.csrf}
    return caller.client.post(case.url, data=form, headers=headers, follow_redirects=False)


def assert_no_leak(role: str, body: str, url: str) -> None:
    for text in FORBIDDEN.get(role, ()):
        assert text not in body, f"{role} saw {text!r} at {url}"


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(case, role, id=f"{case.method} {case.url} as {role}")
        for case in cases
        for role in ROLES
    ]


@pytest.mark.parametrize("case,role", _params(GETS))
def test_each_role_gets_its_status_and_only_its_records(
    callers: dict[str, Caller], case: Case, role: str
) -> None:
    response = send(callers[role], case, with_token=case.api)
    assert response.status_code == case.statuses[role], response.text[:300]
    if response.status_code == 200:
        assert_no_leak(role, response.text, case.url)
    if response.status_code == 303 and role == ANONYMOUS:
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("case,role", _params(GETS))
def test_the_api_answers_the_same_with_a_session_as_with_a_token(
    callers: dict[str, Caller], case: Case, role: str
) -> None:
    if not case.api or role == ANONYMOUS:
        pytest.skip("pages are signed in with the session already")
    response = send(callers[role], case, with_token=False)
    assert response.status_code == case.statuses[role]


def _state(workspace: Workspace) -> tuple[Any, ...]:
    with workspace.store.engine.connect() as conn:
        leads = tuple(conn.execute(select(Lead.lead_id, Lead.status).order_by(Lead.lead_id)))
        events = conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one()
        answers = conn.execute(select(func.count()).select_from(WarmthAnswer)).scalar_one()
        users = tuple(conn.execute(select(User.email, User.role, User.active)
                                   .order_by(User.email)))
    return leads, events, answers, users


@pytest.mark.parametrize(
    "case,role",
    [p for p in _params(REFUSED) if p.values[1] not in ALLOWED_ELSEWHERE[p.values[0].route]],
)
def test_a_refused_request_changes_nothing(
    shared_world: Workspace, callers: dict[str, Caller], case: Case, role: str
) -> None:
    before = _state(shared_world)
    response = send(callers[role], case, with_token=case.api)
    assert response.status_code == case.statuses[role], response.text[:300]
    assert _state(shared_world) == before


def test_every_route_is_in_the_matrix(shared_world: Workspace) -> None:
    app = make_app(shared_world)
    covered = {(c.method, c.route) for c in GETS + REFUSED} | PUBLIC
    # The app's own routes and its two routers' (newer FastAPI keeps included routers apart).
    routes = [*app.routes, *pages.router.routes, *api.router.routes]
    served = {
        (method, route.path)
        for route in routes
        if isinstance(route, APIRoute)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert len(served) > 25
    assert served - covered == set()
    assert {path for _, path in served if path.startswith("/api/")} == set(
        app.openapi()["paths"]
    )


# --- what the roles allowed to act can do, each on a fresh world ------------------------------


@pytest.fixture
def fresh(
    tmp_path: Path, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Workspace, dict[str, Caller]]]:
    """A fresh world with a signed-in caller per role."""
    workspace = fresh_web_world(tmp_path / "ws", store_url, tmp_path_factory.getbasetemp(),
                                setup=add_users)
    yield from ((workspace, c) for c in _callers(workspace))
    workspace.store.engine.dispose()


def lead_status(workspace: Workspace, lead_id: str) -> str:
    with workspace.store.engine.connect() as conn:
        return str(conn.execute(select(Lead.status).where(Lead.lead_id == lead_id)).scalar_one())


def last_event(workspace: Workspace, lead_id: str) -> Any:
    with workspace.store.engine.connect() as conn:
        return conn.execute(
            select(LeadEvent).where(LeadEvent.lead_id == lead_id)
            .order_by(LeadEvent.event_id.desc()).limit(1)
        ).one()


def test_a_rep_accepts_rejects_and_reports_intros_on_their_own_leads(
    fresh: tuple[Workspace, dict[str, Caller]],
) -> None:
    workspace, callers = fresh
    rep = callers["rep"]
    accepted = send(rep, REFUSED[0], with_token=False)
    assert accepted.status_code == 303 and lead_status(workspace, "L-a3") == "accepted"
    event = last_event(workspace, "L-a3")
    assert (event.kind, event.actor) == ("accepted", "r1")
    intro = send(rep, REFUSED[2], with_token=False)
    assert intro.status_code == 303 and lead_status(workspace, "L-a3") == "intro_made"
    other = callers["other_rep"]
    rejected = other.client.post("/api/leads/L-a4/reject",
                                 json={"reason": "no_contact", "note": "left the company"},
                                 headers={"Authorization": f"Bearer {other.token}"})
    assert rejected.status_code == 200 and rejected.json()["to_status"] == "rejected"
    assert last_event(workspace, "L-a4").detail == {"reason": "no_contact",
                                                    "note": "left the company"}


def test_a_wrong_status_or_reason_is_refused_and_changes_nothing(
    fresh: tuple[Workspace, dict[str, Caller]],
) -> None:
    workspace, callers = fresh
    rep = callers["rep"]
    again = rep.client.post("/api/leads/L-a1/accept",
                            headers={"Authorization": f"Bearer {rep.token}"})
    assert again.status_code == 409 and "intro made" in again.json()["detail"]
    bad = rep.client.post("/api/leads/L-a3/reject", json={"reason": "because"},
                          headers={"Authorization": f"Bearer {rep.token}"})
    assert bad.status_code == 422 and lead_status(workspace, "L-a3") == "routed"


def test_a_partner_answers_its_own_warmth_check_by_form_and_by_api(
    fresh: tuple[Workspace, dict[str, Caller]],
) -> None:
    workspace, callers = fresh
    partner = callers["partner"]
    response = partner.client.post(
        "/portal/warmth",
        data={"partner_account_id": "x3", "answer": "some", "note": "we met at a fair",
              "csrf_token": partner.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    other = callers["other_partner"]
    api = other.client.post("/api/warmth-answers",
                            json={"partner_account_id": "y3", "answer": "none"},
                            headers={"Authorization": f"Bearer {other.token}"})
    assert api.status_code == 201 and api.json()["answered_by"] == "lee@datastack.example"
    with workspace.store.engine.connect() as conn:
        stored = {tuple(row) for row in conn.execute(
            select(WarmthAnswer.partner_account_id, WarmthAnswer.answer, WarmthAnswer.answered_by)
            .where(WarmthAnswer.partner_account_id.in_(["x3", "y3"]))
        )}
    assert stored == {("x3", "some", "kim@cloudway.example"),
                      ("y3", "none", "lee@datastack.example")}
    portal = partner.client.get("/portal").text
    assert 'data-account="x3"' not in portal  # no longer waiting for an answer


def test_an_admin_adds_a_user_from_the_settings_page(
    fresh: tuple[Workspace, dict[str, Caller]],
) -> None:
    workspace, callers = fresh
    admin = callers["admin"]
    response = admin.client.post(
        "/settings/users",
        data={"email": "new@cloudway.example", "role": "partner", "partner_id": "p1",
              "password": "0123456789ab", "csrf_token": admin.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "User new@cloudway.example added." in admin.client.get(
        response.headers["location"]).text
    with workspace.store.engine.connect() as conn:
        row = conn.execute(select(User.role, User.partner_id)
                           .where(User.email == "new@cloudway.example")).one()
    assert tuple(row) == ("partner", "p1")


# --- what each role's main page shows -------------------------------------------------------


class _Texts(HTMLParser):
    """The text of every element with class eql-count, and of every SVG text label."""

    def __init__(self) -> None:
        super().__init__()
        self.eql_counts: list[str] = []
        self.labels: list[str] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "eql-count" in classes:
            self._open.append(("eql", []))
        elif tag == "text":
            self._open.append(("label", []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("p", "td", "text"):
            kind, parts = self._open.pop()
            (self.eql_counts if kind == "eql" else self.labels).append("".join(parts))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1].append(data)


def test_the_dashboard_draws_charts_and_every_eql_count_has_its_rate_and_mql(
    callers: dict[str, Caller],
) -> None:
    page = callers["partner_manager"].client.get("/dashboard")
    assert page.status_code == 200
    for section in ("funnel", "conversion", "matrix", "partners", "overdue"):
        assert f'id="{section}"' in page.text
    assert page.text.count("<svg") >= 4
    texts = _Texts()
    texts.feed(page.text)
    assert len(texts.eql_counts) >= 3  # the verdict and one per partner
    with_eqls = [t for t in texts.eql_counts + texts.labels if re.search(r"\d+ EQLs", t)]
    assert with_eqls
    for text in with_eqls:
        assert "%" in text and "MQL" in text, text
    assert "Cloudway" in page.text and "Datastack" in page.text
    assert "L-a2" in page.text  # p2's intro is overdue: listed among overdue motions


def test_a_rep_queue_shows_the_gates_path_warmth_and_deadline(
    callers: dict[str, Caller],
) -> None:
    page = callers["rep"].client.get("/queue").text
    assert 'data-lead="L-a3"' in page and 'data-lead="L-a1"' not in page  # L-a1 is done
    for gate in ("overlap", "warmth", "fit", "motion"):
        assert f"<b>{gate}</b>" in page
    assert "REDROCK (Cloudway)" in page and "partner says <b>strong</b>" in page
    assert "(overdue)" in page  # due five days after routing, 40 days ago


def test_a_partner_portal_shows_its_checks_outcomes_and_scorecard(
    callers: dict[str, Caller],
) -> None:
    page = callers["partner"].client.get("/portal").text
    assert 'data-account="x3"' in page  # its open warmth check
    assert re.search(r'data-lead="L-a1">.*?class="outcome won"', page, re.S)
    assert "(1 of 2 measured)" in page and "MQLs convert at 50.0%" in page


def test_amounts_reach_partners_only_when_shared(shared_world: Workspace) -> None:
    app = make_app(shared_world)
    app.state.doorstep.share_amounts = True
    with TestClient(app) as client:
        sign_in(client, "lee@datastack.example")
        page = client.get("/portal").text
        lead = client.get("/api/leads/L-a2").json()
    assert f"{LOST_AMOUNT:,.0f}" in page
    assert lead["amount"] == LOST_AMOUNT and lead["outcome"] == "lost"


# --- paging stays inside the caller's scope ----------------------------------------------------


def _walk(caller: Caller, first: str, cursor: str, param: str) -> list[str]:
    """Every lead id of every page, following the page's cursor to the end."""
    headers = {"Authorization": f"Bearer {caller.token}"}
    seen: list[str] = []
    url: str | None = first
    while url is not None:
        page = caller.client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["lead_id"] for item in body["items"]]
        url = f"{first}&{param}={quote(body[cursor])}" if body[cursor] else None
    return seen


def test_paging_through_a_partners_leads_gives_exactly_its_own_once(
    callers: dict[str, Caller],
) -> None:
    assert _walk(callers["partner"], "/api/leads?limit=1", "next_before", "before") == [
        "L-a1", "L-a3"
    ]
    assert _walk(callers["other_partner"], "/api/leads?limit=1", "next_before", "before") == [
        "L-a2", "L-a4"
    ]


def test_paging_through_every_lead_by_key_sees_each_once(callers: dict[str, Caller]) -> None:
    seen = _walk(callers["admin"], "/api/leads?limit=2", "next_after", "after")
    assert seen == [f"L-a{i}" for i in range(1, 8)]
    page = callers["admin"].client.get("/leads?offset=5").text  # the page, sorted by lead id
    assert 'href="/leads/L-a6"' in page and 'href="/leads/L-a5"' not in page


@pytest.mark.parametrize(
    "url", ["/api/leads?before=not-a-cursor", "/api/leads?offset=10001", "/portal?before=x|"]
)
def test_a_bad_cursor_or_a_too_deep_offset_is_refused(
    callers: dict[str, Caller], url: str
) -> None:
    caller = callers["partner"]
    response = caller.client.get(url, headers={"Authorization": f"Bearer {caller.token}"})
    assert response.status_code == 422


def test_a_failing_dashboard_computation_is_shown_and_not_retried_per_request(
    shared_world: Workspace,
) -> None:
    calls: list[int] = []

    def broken(_workspace: Workspace) -> Any:
        calls.append(1)
        raise RuntimeError("the store is locked")

    app = make_app(shared_world)
    app.state.doorstep.snapshots = SnapshotCache(shared_world, compute=broken)
    with TestClient(app) as client:
        sign_in(client, "admin@example.com")
        first = client.get("/dashboard").text
        second = client.get("/dashboard").text
    assert "being computed" in first and "RuntimeError: the store is locked" in second
    assert len(calls) == 1
    assert 'id="overdue"' in second  # the live part of the page still works
