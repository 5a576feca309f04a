"""Web sign-in, sessions, CSRF and API tokens, and the `user` and `feedback` commands."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_act_channels import MailStore, smtp_server  # noqa: F401 (a fixture)
from test_feedback import fresh_web_world, with_smtp
from typer.testing import CliRunner

from doorstep.store.models import ApiToken, Lead, User
from doorstep.web import auth, create_app
from doorstep.web.auth import add_user, issue_token, revoke_tokens, set_active
from doorstep.web.commands import register
from doorstep.web.deps import SESSION_COOKIE
from doorstep.web.queries import MATCH_METHODS, account_matches
from doorstep.workspace import Workspace

PASSWORD = "correct horse battery"
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')

# Who signs in, with which role and scope: every role, and a second rep and partner.
USERS = {
    "admin": ("admin@example.com", "admin", None, None),
    "partner_manager": ("pm@example.com", "partner_manager", None, None),
    "rep": ("ada@example.com", "rep", None, "r1"),
    "other_rep": ("bea@example.com", "rep", None, "r2"),
    "partner": ("kim@cloudway.example", "partner", "p1", None),
    "other_partner": ("lee@datastack.example", "partner", "p2", None),
}


def add_users(workspace: Workspace) -> None:
    """One user per entry of USERS, all with PASSWORD."""
    for email, role, partner_id, rep_id in USERS.values():
        add_user(workspace.store, email, role, PASSWORD, partner_id=partner_id, rep_id=rep_id)


def make_app(workspace: Workspace) -> FastAPI:
    """The app over the workspace, with the dashboard's numbers computed on first use."""
    app: FastAPI = create_app(workspace.path, warm_up=False, snapshot_wait=60)
    return app


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = client.get("/login")
    assert form.status_code == 200
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    landing = client.get(response.headers["location"])
    return csrf_of(landing.text)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters, so tests sign in quickly (the hashes are still argon2id)."""
    monkeypatch.setattr(auth, "_hasher", QUICK_HASHER)


@pytest.fixture
def world(
    tmp_path: Path, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """The web world with a user of every role."""
    workspace = fresh_web_world(tmp_path / "ws", store_url, tmp_path_factory.getbasetemp(),
                                setup=add_users)
    yield workspace
    workspace.store.engine.dispose()


@pytest.fixture
def client(world: Workspace) -> Iterator[TestClient]:
    """A client of the app over the world, over plain http."""
    with TestClient(make_app(world)) as c:
        yield c


def stored_user(workspace: Workspace, email: str) -> User:
    with workspace.store.engine.connect() as conn:
        row = conn.execute(select(User).where(User.email == email)).one()
    user: User = row
    return user


def test_passwords_are_stored_as_argon2_hashes_only(world: Workspace) -> None:
    stored = stored_user(world, "admin@example.com")
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


def test_signing_in_sets_a_signed_httponly_samesite_lax_cookie(client: TestClient) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "ADA@example.com ", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http
    assert "ada@example.com" not in cookie  # the cookie names a user id, signed


def test_the_cookie_is_secure_over_https(world: Workspace) -> None:
    with TestClient(make_app(world), base_url="https://testserver") as c:
        form = c.get("/login")
        response = c.post(
            "/login",
            data={"email": "ada@example.com", "password": PASSWORD,
                  "csrf_token": csrf_of(form.text)},
            follow_redirects=False,
        )
    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_wrong_password_is_refused_without_a_session(client: TestClient) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": "wrong password!",
              "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 401 and "Wrong email or password" in response.text
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(client: TestClient) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "nobody@example.com", "password": PASSWORD,
              "csrf_token": csrf_of(form.text)},
    )
    assert response.status_code == 401 and "Wrong email or password" in response.text


def test_signing_in_needs_the_forms_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_a_page_without_a_session_redirects_to_sign_in_and_back(client: TestClient) -> None:
    response = client.get("/queue?offset=0", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/queue%3Foffset%3D0"
    form = client.get(response.headers["location"])
    signed = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text),
              "next": "/queue?offset=0"},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/queue?offset=0"


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text),
              "next": "//evil.example/steal"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/queue"


def test_an_api_call_without_credentials_is_401_with_a_bearer_challenge(
    client: TestClient,
) -> None:
    response = client.get("/api/leads")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_tampered_session_cookie_is_not_a_session(client: TestClient) -> None:
    sign_in(client, "ada@example.com")
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"))
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_a_form_post_without_the_csrf_token_is_refused(
    client: TestClient, world: Workspace
) -> None:
    sign_in(client, "ada@example.com")
    response = client.post("/leads/L-a3/accept", follow_redirects=False)
    assert response.status_code == 403
    wrong = client.post("/leads/L-a3/accept", data={"csrf_token": "forged"},
                        follow_redirects=False)
    assert wrong.status_code == 403
    with world.store.engine.connect() as conn:
        status = conn.execute(select(Lead.status).where(Lead.lead_id == "L-a3")).scalar_one()
    assert status == "routed"


def test_a_form_post_with_the_csrf_token_goes_through(client: TestClient, world: Workspace) -> None:
    token = sign_in(client, "ada@example.com")
    response = client.post("/leads/L-a3/accept", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/queue?notice=lead_done"
    assert "Lead L-a3 accepted." in client.get(response.headers["location"]).text
    with world.store.engine.connect() as conn:
        status = conn.execute(select(Lead.status).where(Lead.lead_id == "L-a3")).scalar_one()
    assert status == "accepted"


def test_a_notice_in_the_url_is_a_code_never_free_text(client: TestClient) -> None:
    sign_in(client, "ada@example.com")
    forged = client.get("/queue", params={"notice": "Your account is suspended: call +1 555",
                                          "problem": "Send your password to evil.example"})
    assert "suspended" not in forged.text and "evil.example" not in forged.text
    assert "You are signed out." in client.get("/queue?notice=signed_out").text
    # a known code without its details (they ride in the session) says the plain sentence
    plain = client.get("/queue?notice=lead_done").text
    assert "Done." in plain and "Lead " not in plain.split('class="notice"')[1][:40]


def test_an_api_post_with_a_session_cookie_needs_the_csrf_header(
    client: TestClient, world: Workspace
) -> None:
    token = sign_in(client, "ada@example.com")
    assert client.post("/api/leads/L-a3/accept").status_code == 403
    response = client.post("/api/leads/L-a3/accept", headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.json()["to_status"] == "accepted"


def test_signing_out_ends_the_session(client: TestClient) -> None:
    token = sign_in(client, "ada@example.com")
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_a_cookie_saved_before_signing_out_opens_nothing_after(
    client: TestClient, world: Workspace
) -> None:
    token = sign_in(client, "ada@example.com")
    saved = client.cookies.get(SESSION_COOKIE)
    assert client.get("/queue", follow_redirects=False).status_code == 200
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    with TestClient(make_app(world)) as thief:
        thief.cookies.set(SESSION_COOKIE, saved)
        assert thief.get("/queue", follow_redirects=False).status_code == 303


def test_api_tokens_are_stored_as_hashes_and_work_as_bearer(
    client: TestClient, world: Workspace
) -> None:
    token = issue_token(world.store, "kim@cloudway.example")
    with world.store.engine.connect() as conn:
        stored = list(conn.execute(select(ApiToken.token_hash, ApiToken.prefix)))
    assert [h for h, _ in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token != h and len(p) < len(token) for h, p in stored)
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"email": "kim@cloudway.example", "role": "partner", "partner_id": "p1",
                         "rep_id": None}


def test_a_wrong_or_revoked_token_is_401(client: TestClient, world: Workspace) -> None:
    token = issue_token(world.store, "ada@example.com")
    bad = client.get("/api/me", headers={"Authorization": f"Bearer {token}x"})
    assert bad.status_code == 401
    assert revoke_tokens(world.store, "ada@example.com") == 1
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_bearer_post_needs_no_csrf_token(client: TestClient, world: Workspace) -> None:
    token = issue_token(world.store, "ada@example.com")
    response = client.post("/api/leads/L-a3/accept", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["actor"] == "r1"


def test_deactivating_a_user_ends_their_session_and_tokens(
    client: TestClient, world: Workspace
) -> None:
    sign_in(client, "ada@example.com")
    token = issue_token(world.store, "ada@example.com")
    set_active(world.store, "ada@example.com", False)
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_changing_a_password_ends_open_sessions(client: TestClient, world: Workspace) -> None:
    sign_in(client, "ada@example.com")
    add_user(world.store, "ada@example.com", "rep", "a brand new password", rep_id="r1")
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_a_password_change_revokes_tokens_for_good(client: TestClient, world: Workspace) -> None:
    token = issue_token(world.store, "ada@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    add_user(world.store, "ada@example.com", "rep", "a brand new password", rep_id="r1")
    assert client.get("/api/me", headers=bearer).status_code == 401


def test_reactivating_a_user_does_not_bring_old_tokens_back(
    client: TestClient, world: Workspace
) -> None:
    token = issue_token(world.store, "ada@example.com")
    set_active(world.store, "ada@example.com", False)
    set_active(world.store, "ada@example.com", True)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    fresh = issue_token(world.store, "ada@example.com")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_user_list_revoke_and_remove(client: TestClient, cli: typer.Typer,
                                     world: Workspace) -> None:
    sign_in(client, "ada@example.com")
    token = issue_token(world.store, "ada@example.com")
    listed = CliRunner().invoke(cli, ["user", "list", str(world.path)])
    assert listed.exit_code == 0, listed.output
    assert "ada@example.com" in listed.output and "kim@cloudway.example" in listed.output
    row = next(line for line in listed.output.splitlines() if "ada@example.com" in line)
    assert row.rstrip(" │").endswith("1")  # one live token
    revoked = CliRunner().invoke(cli, ["user", "revoke", str(world.path), "--email",
                                       "Ada@Example.com"])
    assert revoked.exit_code == 0 and "1 API token revoked" in revoked.output
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    sign_in(client, "ada@example.com")  # revoked, not removed: signing in again works
    removed = CliRunner().invoke(cli, ["user", "remove", str(world.path), "--email",
                                       "ada@example.com"])
    assert removed.exit_code == 0
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert "ada@example.com" not in CliRunner().invoke(cli, ["user", "list",
                                                             str(world.path)]).output
    again = CliRunner().invoke(cli, ["user", "remove", str(world.path), "--email",
                                     "ada@example.com"])
    assert again.exit_code == 1 and "there is no user ada@example.com" in again.output


def test_pages_carry_security_headers_and_load_nothing_from_elsewhere(
    client: TestClient,
) -> None:
    sign_in(client, "admin@example.com")
    page = client.get("/dashboard")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', page.text)


def test_the_openapi_contract_lists_the_api_and_no_cdn_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/leads", "/api/leads/{lead_id}", "/api/overlaps", "/api/warmth-answers",
                 "/api/warmth-checks", "/api/report", "/api/partners/{partner_id}/scorecard"):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/warmth-answers"]
    assert not any(p.startswith(("/dashboard", "/portal")) for p in spec["paths"])
    assert client.get("/docs").status_code == 404


# --- the commands ---------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    """A command line with only the web app's commands."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """doorstep."""

    register(app)
    return app


def test_user_add_takes_the_password_from_the_environment(
    cli: typer.Typer, world: Workspace
) -> None:
    result = CliRunner().invoke(
        cli, ["user", "add", str(world.path), "--email", "New@Example.com", "--role", "partner",
              "--partner", "p2"],
        env={"DOORSTEP_PASSWORD": "a long enough password"},
    )
    assert result.exit_code == 0, result.output
    assert "added new@example.com: partner for partner p2" in result.output
    stored = stored_user(world, "new@example.com")
    assert (stored.role, stored.partner_id) == ("partner", "p2")


def test_user_add_prompts_for_the_password_when_not_in_the_environment(
    cli: typer.Typer, world: Workspace
) -> None:
    result = CliRunner().invoke(
        cli, ["user", "add", str(world.path), "--email", "pm2@example.com", "--role",
              "partner_manager"],
        input="typed at the prompt\ntyped at the prompt\n", env={"DOORSTEP_PASSWORD": ""},
    )
    assert result.exit_code == 0, result.output
    with TestClient(make_app(world)) as c:
        sign_in(c, "pm2@example.com", "typed at the prompt")
        assert c.get("/dashboard").status_code == 200


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--role", "partner", "--partner", "p9"], 1, "no partner p9"),
        (["--role", "rep"], 1, "needs --rep"),
        (["--role", "admin", "--rep", "r1"], 1, "--rep is only for rep users"),
        (["--role", "owner"], 2, "--role must be one of"),
    ],
)
def test_user_add_refuses_a_wrong_scope_with_one_sentence(
    cli: typer.Typer, world: Workspace, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(
        cli, ["user", "add", str(world.path), "--email", "x@example.com", *args],
        env={"DOORSTEP_PASSWORD": "a long enough password"},
    )
    assert result.exit_code == code
    assert message in result.output


def test_user_token_prints_a_token_that_signs_api_calls(
    cli: typer.Typer, world: Workspace
) -> None:
    result = CliRunner().invoke(cli, ["user", "token", str(world.path), "--email",
                                      "pm@example.com"])
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("dst_") and len(token) > 40
    with TestClient(make_app(world)) as c:
        me = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "partner_manager"


def test_user_token_for_an_unknown_user_is_a_user_error(
    cli: typer.Typer, world: Workspace
) -> None:
    result = CliRunner().invoke(cli, ["user", "token", str(world.path), "--email", "no@x.com"])
    assert result.exit_code == 1 and "there is no user no@x.com" in result.output


def test_feedback_prints_each_scorecard_and_writes_the_csv(
    cli: typer.Typer, world: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "outcomes.csv"
    result = CliRunner().invoke(cli, ["feedback", str(world.path), "--partner", "p1", "--csv",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert "Cloudway (p1)" in result.output and "Datastack" not in result.output
    assert "EQL conversion: EQLs converted at 50.0%" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("partner_id,lead_id") and len(lines) == 3


def test_feedback_for_an_unknown_partner_exits_1(cli: typer.Typer, world: Workspace) -> None:
    result = CliRunner().invoke(cli, ["feedback", str(world.path), "--partner", "p9"])
    assert result.exit_code == 1 and "no partner p9" in result.output


def test_feedback_send_queues_each_digest_once_and_delivers_it(
    cli: typer.Typer, world: Workspace, smtp_server: tuple[int, MailStore]  # noqa: F811
) -> None:
    port, mail = smtp_server
    workspace = with_smtp(world, port)
    first = CliRunner().invoke(cli, ["feedback", str(workspace.path), "--send"])
    assert first.exit_code == 0, first.output
    assert "2 queued, 0 already queued before" in first.output
    assert "partner p3 has no contact_email" in first.output
    again = CliRunner().invoke(cli, ["feedback", str(workspace.path), "--send"])
    assert "0 queued, 2 already queued before" in again.output
    subjects = [m["Subject"] for _, _, m in mail.envelopes]
    assert sum(s.startswith("Your doorstep digest") for s in subjects) == 2
    workspace.store.engine.dispose()


def _attempt(client: TestClient, email: str, password: str) -> int:
    form = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    ).status_code


def test_repeated_wrong_passwords_lock_sign_in_until_an_admin_unlocks(
    client: TestClient, world: Workspace, cli: typer.Typer
) -> None:
    email = "ada@example.com"
    codes = [_attempt(client, email, "wrong password") for _ in range(auth.MAX_FAILED_SIGN_INS)]
    assert codes == [401] * (auth.MAX_FAILED_SIGN_INS - 1) + [429]
    # locked: even the right password is refused, and the page says until when and what to do
    form = client.get("/login")
    locked = client.post("/login", data={"email": email, "password": PASSWORD,
                                         "csrf_token": csrf_of(form.text)})
    assert locked.status_code == 429
    assert "try again after" in locked.text and "doorstep user unlock" in locked.text
    # other users are not affected
    assert _attempt(client, "bea@example.com", PASSWORD) == 303
    result = CliRunner().invoke(cli, ["user", "unlock", str(world.path), "--email", email])
    assert result.exit_code == 0, result.output
    assert _attempt(client, email, PASSWORD) == 303


def test_a_known_and_an_unknown_email_get_the_same_answers(client: TestClient) -> None:
    tries = auth.MAX_FAILED_SIGN_INS + 2
    known = [_attempt(client, "ada@example.com", "wrong password") for _ in range(tries)]
    unknown = [_attempt(client, "nobody@example.com", "wrong password") for _ in range(tries)]
    assert known == unknown == [401] * (auth.MAX_FAILED_SIGN_INS - 1) + [429] * 3


def test_every_answer_costs_one_password_hash_check(
    world: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = auth.verify_password

    def counted(password_hash: str, password: str) -> bool:
        checks.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counted)
    for email in ("pm@example.com", "nobody@example.com"):
        for _ in range(auth.MAX_FAILED_SIGN_INS - 1):
            assert auth.authenticate(world.store, email, "nope", client="c1") is None
        with pytest.raises(auth.SignInLocked):
            auth.authenticate(world.store, email, "nope", client="c1")
        with pytest.raises(auth.SignInLocked):  # locked: still one check, as long as the others
            auth.authenticate(world.store, email, PASSWORD, client="c1")
    assert len(checks) == 2 * (auth.MAX_FAILED_SIGN_INS + 1)


def test_a_stranger_cannot_lock_someone_else_out(world: Workspace) -> None:
    app = make_app(world)
    with TestClient(app, client=("203.0.113.9", 4000)) as stranger, \
            TestClient(app, client=("198.51.100.7", 5000)) as admin:
        for _ in range(auth.MAX_FAILED_SIGN_INS + 3):
            _attempt(stranger, "admin@example.com", "guess")
        assert _attempt(stranger, "admin@example.com", PASSWORD) == 429
        assert _attempt(admin, "admin@example.com", PASSWORD) == 303


def test_one_client_guessing_across_many_emails_is_locked_out(world: Workspace) -> None:
    store = world.store
    emails = [f"guess{i}@example.com" for i in range(auth.MAX_CLIENT_FAILURES)]
    outcomes = []
    for email in emails:
        try:
            outcomes.append(auth.authenticate(store, email, "nope", client="203.0.113.9"))
        except auth.SignInLocked:
            outcomes.append("locked")
    assert outcomes == [None] * (auth.MAX_CLIENT_FAILURES - 1) + ["locked"]
    with pytest.raises(auth.SignInLocked):
        auth.authenticate(store, "pm@example.com", PASSWORD, client="203.0.113.9")
    assert auth.authenticate(store, "pm@example.com", PASSWORD, client="198.51.100.7")


def test_a_lock_runs_out_and_a_success_clears_the_count(world: Workspace) -> None:
    store, email = world.store, "pm@example.com"
    start = datetime(2026, 11, 30, 9, 0)
    for _ in range(auth.MAX_FAILED_SIGN_INS - 1):
        assert auth.authenticate(store, email, "nope", now=start) is None
    with pytest.raises(auth.SignInLocked):
        auth.authenticate(store, email, "nope", now=start)
    with pytest.raises(auth.SignInLocked):
        auth.authenticate(store, email, PASSWORD, now=start + auth.SIGN_IN_LOCK / 2)
    later = start + auth.SIGN_IN_LOCK + timedelta(seconds=1)
    # after the lock a failure starts the count again rather than locking at once
    assert auth.authenticate(store, email, "nope", now=later) is None
    assert auth.authenticate(store, email, PASSWORD, now=later) is not None
    # the success cleared the count: four more failures do not lock
    for _ in range(auth.MAX_FAILED_SIGN_INS - 1):
        assert auth.authenticate(store, email, "nope", now=later) is None


def test_unlocking_an_unknown_user_is_a_user_error(cli: typer.Typer, world: Workspace) -> None:
    result = CliRunner().invoke(cli, ["user", "unlock", str(world.path), "--email", "no@x.com"])
    assert result.exit_code == 1 and "no user no@x.com" in result.output


def test_the_lead_page_shows_how_each_partner_record_was_matched(client: TestClient,
                                                                 world: Workspace) -> None:
    sign_in(client, "admin@example.com")
    page = client.get("/leads/L-a1")
    assert page.status_code == 200
    assert "How we know the partners have this account" in page.text
    with world.store.engine.connect() as conn:
        lead_account = conn.execute(
            select(Lead.account_id).where(Lead.lead_id == "L-a1")
        ).scalar_one()
        matches = account_matches(conn, lead_account)
    assert matches
    for m in matches:
        assert m.method in MATCH_METHODS.values()
        assert m.method in page.text and m.partner_name in page.text


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "1234567890", "Password1234"])
def test_a_common_password_is_refused_with_one_sentence(world: Workspace, password: str) -> None:
    with pytest.raises(auth.UserError, match="most common"):
        add_user(world.store, "new@example.com", "admin", password)
    assert auth.find_user(world.store, "new@example.com") is None


def test_the_users_email_is_no_password(world: Workspace) -> None:
    with pytest.raises(auth.UserError, match="email"):
        add_user(world.store, "maximilian.berg@example.com", "admin", "Maximilian.Berg")


@pytest.mark.parametrize("body,content_type", [
    (b"{not json", "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"plain words", "text/plain"),
    (b"", "application/json"),
])
def test_a_malformed_body_is_a_4xx_with_the_security_headers(
    client: TestClient, world: Workspace, body: bytes, content_type: str
) -> None:
    token = issue_token(world.store, "kim@cloudway.example")
    for path, auth_header in (("/api/warmth-answers", f"Bearer {token}"),
                              ("/api/share/psi", ""), ("/api/share/bundle", "")):
        headers = {"content-type": content_type}
        if auth_header:
            headers["Authorization"] = auth_header
        response = client.post(path, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers
        assert "plain words" not in response.text


def test_an_unforeseen_failure_is_a_bare_500_with_the_security_headers(
    world: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from doorstep.web import api

    def broken(*_: object) -> None:
        raise RuntimeError("secret internals /var/lib/doorstep")

    monkeypatch.setattr(api, "serve_psi", broken)
    with TestClient(make_app(world), raise_server_exceptions=False) as c:
        response = c.post("/api/share/psi", json={"anything": 1})
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in response.headers
    assert "secret internals" not in response.text
