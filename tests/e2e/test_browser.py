"""A real browser against a real server: each role signs in and does its main job.

Debian's chromium (apt-get install chromium) driven by Playwright; skipped when it is missing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from doorstep.store.models import Lead, LeadEvent, WarmthAnswer
from doorstep.web import auth
from doorstep.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")

from test_feedback import fresh_web_world  # noqa: E402
from test_web_auth import PASSWORD, QUICK_HASHER, add_users, make_app  # noqa: E402


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The web world with a user of every role, on SQLite."""
    folder = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", QUICK_HASHER)
        workspace = fresh_web_world(folder / "ws", f"sqlite:///{folder / 'doorstep.db'}",
                                    tmp_path_factory.getbasetemp(), setup=add_users)
    yield workspace
    workspace.store.engine.dispose()


@pytest.fixture(scope="module")
def server(world: Workspace) -> Iterator[str]:
    """A uvicorn server with the app, in a thread, on a free loopback port; yields its URL."""
    import uvicorn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", QUICK_HASHER)
        port = free_port()
        config = uvicorn.Config(make_app(world), host="127.0.0.1", port=port,
                                log_level="warning")
        running = uvicorn.Server(config)
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not running.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        running.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, without sandbox or background traffic."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def signed_in(browser: Any, server: str) -> Iterator[Any]:
    """A function that opens a fresh browser context and signs in as one user."""
    contexts: list[Any] = []

    def sign_in(email: str, viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(**({"viewport": viewport} if viewport else {}))
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield sign_in
    for context in contexts:
        context.close()


def test_an_admin_sees_the_dashboard_with_its_charts(signed_in: Any) -> None:
    page = signed_in("admin@example.com")
    assert page.url.endswith("/dashboard")
    sync_api.expect(page.locator("h1")).to_have_text("Dashboard")
    sync_api.expect(page.locator("#funnel svg.chart")).to_be_visible()
    sync_api.expect(page.locator("#conversion svg.chart")).to_be_visible()
    sync_api.expect(page.locator("#matrix svg.chart")).to_be_visible()
    box = page.locator("#funnel svg.chart").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    verdict = page.locator("#verdict .eql-count").inner_text()
    assert "EQLs" in verdict and "%" in verdict and "MQL" in verdict
    sync_api.expect(page.locator("table.scorecards")).to_contain_text("Cloudway")


def test_a_rep_accepts_one_lead_and_rejects_another_with_a_reason(
    signed_in: Any, world: Workspace
) -> None:
    page = signed_in("bea@example.com")
    assert page.url.endswith("/queue")
    page.locator("#lead-L-a4 button.accept").click()
    sync_api.expect(page.locator(".notice")).to_have_text("Lead L-a4 accepted.")
    card = page.locator("#lead-L-a2")
    card.locator("details.reject summary").click()
    card.locator("select[name=reason]").select_option("no_contact")
    card.locator("input[name=note]").fill("nobody answers")
    card.locator("button.reject").click()
    sync_api.expect(page.locator(".notice")).to_have_text("Lead L-a2 rejected.")
    sync_api.expect(page.locator("#lead-L-a2")).to_have_count(0)
    with world.store.engine.connect() as conn:
        status = dict(conn.execute(select(Lead.lead_id, Lead.status)
                                   .where(Lead.lead_id.in_(["L-a2", "L-a4"]))).all())
        rejection = conn.execute(
            select(LeadEvent.detail, LeadEvent.actor)
            .where(LeadEvent.lead_id == "L-a2", LeadEvent.kind == "rejected")
        ).one()
    assert status == {"L-a2": "rejected", "L-a4": "accepted"}
    assert tuple(rejection) == ({"reason": "no_contact", "note": "nobody answers"}, "r2")


def test_a_partner_answers_a_warmth_check_and_sees_its_outcomes(
    signed_in: Any, world: Workspace
) -> None:
    page = signed_in("kim@cloudway.example")
    assert page.url.endswith("/portal")
    check = page.locator('tr.check[data-account="x3"]')
    check.locator('input[value="strong"]').check()
    check.locator("input[name=note]").fill("their CFO is a friend")
    check.locator("button[type=submit]").click()
    sync_api.expect(page.locator(".notice")).to_contain_text("your answer on x3 is saved")
    sync_api.expect(page.locator('tr.check[data-account="x3"]')).to_have_count(0)
    won = page.locator('#outcomes tr[data-lead="L-a1"] td.outcome')
    sync_api.expect(won).to_have_text("won")
    sync_api.expect(page.locator("#scorecard svg.chart")).to_be_visible()
    assert "Datastack" not in page.content()
    with world.store.engine.connect() as conn:
        answer = conn.execute(
            select(WarmthAnswer.answer, WarmthAnswer.note, WarmthAnswer.answered_by)
            .where(WarmthAnswer.partner_account_id == "x3")
        ).one()
    assert tuple(answer) == ("strong", "their CFO is a friend", "kim@cloudway.example")


def test_an_admin_filters_and_sorts_the_leads_list(signed_in: Any, world: Workspace) -> None:
    page = signed_in("admin@example.com")
    page.goto(page.url.replace("/dashboard", "/leads"))
    page.locator("select[name=partner]").select_option("p1")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_load_state()
    page.get_by_role("link", name="warmth").click()
    page.wait_for_load_state()
    assert "partner=p1" in page.url and "sort=warmth" in page.url
    shown = page.locator("table.leads tbody tr[data-lead]").evaluate_all(
        "rows => rows.map(r => r.dataset.lead)")
    with world.store.engine.connect() as conn:
        ours = conn.execute(select(Lead.lead_id, Lead.warmth_score)
                            .where(Lead.partner_id == "p1")).all()
    assert set(shown) == {lead_id for lead_id, _ in ours}
    scores = dict(ours)
    known = [scores[i] for i in shown if scores[i] is not None]
    assert known == sorted(known)


def test_an_admin_reassigns_a_lead_from_a_reps_queue(signed_in: Any, world: Workspace) -> None:
    page = signed_in("admin@example.com")
    page.goto(page.url.replace("/dashboard", "/queue?rep=r1"))
    card = page.locator("#lead-L-a3")
    card.locator("form.reassign select[name=owner_id]").select_option("r2")
    card.locator("button.reassign").click()
    sync_api.expect(page.locator(".notice")).to_contain_text("Lead L-a3 reassigned to r2")
    sync_api.expect(page.locator("#lead-L-a3")).to_have_count(1)  # now in r2's queue
    assert "rep=r2" in page.url
    with world.store.engine.connect() as conn:
        owner = conn.execute(select(Lead.owner_id).where(Lead.lead_id == "L-a3")).scalar_one()
    assert owner == "r2"


def test_a_partner_answers_several_checks_at_once(signed_in: Any, world: Workspace) -> None:
    page = signed_in("lee@datastack.example")
    rows = page.locator("tr.check")
    count = rows.count()
    assert count >= 1
    for i in range(count):
        rows.nth(i).locator('input[type=checkbox][form="bulk-answer"]').check()
    page.locator("#bulk-answer select[name=answer]").select_option("none")
    page.locator("#bulk-answer button[type=submit]").click()
    sync_api.expect(page.locator(".notice")).to_contain_text("saved as none")
    sync_api.expect(page.locator("tr.check")).to_have_count(0)
    with world.store.engine.connect() as conn:
        answers = conn.execute(select(WarmthAnswer.answer).where(
            WarmthAnswer.partner_id == "p2", WarmthAnswer.answered_by == "lee@datastack.example"
        )).scalars().all()
    assert answers.count("none") == count


PHONE = {"width": 390, "height": 844}
PAGES_BY_ROLE = {
    "admin@example.com": ("/dashboard", "/leads", "/leads/L-a1", "/queue?rep=r1", "/settings"),
    "ada@example.com": ("/queue", "/leads/L-a1"),
    "kim@cloudway.example": ("/portal", "/portal/leads/L-a1"),
}


@pytest.mark.parametrize("email", list(PAGES_BY_ROLE))
def test_every_page_works_on_a_390_px_screen(
    signed_in: Any, server: str, email: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = tmp_path_factory.mktemp("screenshots")
    page = signed_in(email, viewport=PHONE)
    for path in PAGES_BY_ROLE[email]:
        response = page.goto(f"{server}{path}")
        assert response is not None and response.status == 200, path
        # nothing wider than the screen: the page does not scroll sideways
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
        box = page.get_by_role("button", name="Sign out").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        shot = shots / f"{email.split('@')[0]}{path.replace('/', '_')}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000
