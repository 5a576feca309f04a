"""Each role's daily work in the web app: the lead page's actions and contact, staff opening
any rep's queue and reassigning a lead."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_web_auth import make_app, quick_hashes, sign_in, world  # noqa: F401

from doorstep.act import act
from doorstep.store.models import Delivery, Lead, LeadEvent
from doorstep.workspace import Workspace


def owner_and_status(world: Workspace, lead_id: str) -> tuple[str, str]:  # noqa: F811
    with world.store.engine.connect() as conn:
        row = conn.execute(select(Lead.owner_id, Lead.status).where(Lead.lead_id == lead_id)).one()
    return str(row.owner_id), str(row.status)


def test_the_owner_sees_their_actions_and_whom_to_ask(world: Workspace) -> None:  # noqa: F811
    with TestClient(make_app(world)) as client:
        sign_in(client, "ada@example.com")
        page = client.get("/leads/L-a3").text
    assert 'action="/leads/L-a3/accept"' in page and 'action="/leads/L-a3/reject"' in page
    assert "reassign" not in page
    assert "Whom to ask for the introduction" in page and "mailto:" in page


def test_staff_see_reassignment_not_the_owners_buttons(world: Workspace) -> None:  # noqa: F811
    with TestClient(make_app(world)) as client:
        sign_in(client, "pm@example.com")
        page = client.get("/leads/L-a3").text
    assert 'action="/leads/L-a3/reassign"' in page
    assert 'action="/leads/L-a3/accept"' not in page


def test_staff_open_any_reps_queue_and_reassign_a_lead(world: Workspace) -> None:  # noqa: F811
    assert owner_and_status(world, "L-a3") == ("r1", "routed")
    with TestClient(make_app(world)) as client:
        token = sign_in(client, "admin@example.com")
        queue = client.get("/queue?rep=r1")
        assert queue.status_code == 200 and "L-a3" in queue.text
        done = client.post("/leads/L-a3/reassign", data={"owner_id": "r2", "csrf_token": token},
                           follow_redirects=False)
        assert done.status_code == 303
        landing = client.get(done.headers["location"])
        assert "Lead L-a3 reassigned to r2" in landing.text and "L-a3" in landing.text
        assert "L-a3" not in client.get("/queue?rep=r1").text
        history = client.get("/leads/L-a3").text
    assert "reassigned" in history and "r1 → r2" in history
    assert owner_and_status(world, "L-a3") == ("r2", "routed")
    with world.store.engine.connect() as conn:
        event = conn.execute(select(LeadEvent).where(LeadEvent.lead_id == "L-a3",
                                                     LeadEvent.kind == "reassigned")).one()
    assert event.actor == "admin@example.com"
    assert event.detail == {"from_owner_id": "r1", "to_owner_id": "r2"}
    act(world, send=False)  # the new owner is told through the outbox
    with world.store.engine.connect() as conn:
        recipients = set(conn.execute(select(Delivery.recipient).where(
            Delivery.lead_id == "L-a3", Delivery.action == "assignment")).scalars())
    assert "bea@example.com" in recipients


def test_a_reassignment_to_nobody_real_is_refused_in_one_sentence(
    world: Workspace,  # noqa: F811
) -> None:
    with TestClient(make_app(world)) as client:
        token = sign_in(client, "admin@example.com")
        done = client.post("/leads/L-a3/reassign", data={"owner_id": "r99", "csrf_token": token})
    assert "there is no rep r99" in done.text
    assert owner_and_status(world, "L-a3") == ("r1", "routed")


def test_a_rep_cannot_open_another_reps_queue(world: Workspace) -> None:  # noqa: F811
    with TestClient(make_app(world)) as client:
        sign_in(client, "ada@example.com")
        assert client.get("/queue?rep=r2").status_code == 404
        assert client.get("/queue?rep=r1").status_code == 200


def open_checks(world: Workspace, partner_id: str) -> list[str]:  # noqa: F811
    from doorstep.feedback import warmth_checks

    with world.store.engine.connect() as conn:
        return [c.partner_account_id for c in warmth_checks(conn, partner_id, limit=100)]


def test_the_portal_defines_each_answer_in_one_sentence(world: Workspace) -> None:  # noqa: F811
    with TestClient(make_app(world)) as client:
        sign_in(client, "lee@datastack.example")
        page = client.get("/portal").text
    assert "<b>Strong</b>: you know someone there well and can introduce us now;" in page
    assert "<b>Some</b>:" in page and "<b>None</b>:" in page


def test_a_partner_answers_many_checks_at_once(world: Workspace) -> None:  # noqa: F811
    before = open_checks(world, "p2")
    assert len(before) >= 1
    with TestClient(make_app(world)) as client:
        token = sign_in(client, "lee@datastack.example")
        page = client.get("/portal").text
        assert 'form="bulk-answer"' in page
        done = client.post("/portal/warmth/bulk", data={
            "partner_account_id": before, "answer": "some", "csrf_token": token})
    saved = f"{len(before)} answer{'' if len(before) == 1 else 's'} saved as some"
    assert saved in done.text
    assert open_checks(world, "p2") == []


def test_a_bulk_answer_to_another_partners_check_changes_nothing(
    world: Workspace,  # noqa: F811
) -> None:
    theirs = open_checks(world, "p1")
    with TestClient(make_app(world)) as client:
        token = sign_in(client, "lee@datastack.example")
        refused = client.post("/portal/warmth/bulk", data={
            "partner_account_id": theirs[:1], "answer": "strong", "csrf_token": token})
    assert refused.status_code == 404
    assert open_checks(world, "p1") == theirs


def test_checks_filter_by_relationship_and_age(world: Workspace) -> None:  # noqa: F811
    import re

    from doorstep.feedback import warmth_checks

    def shown(page: str) -> set[str]:
        return set(re.findall(r'<tr class="check" data-account="([^"]+)"', page))

    with TestClient(make_app(world)) as client:
        sign_in(client, "kim@cloudway.example")
        everything = shown(client.get("/portal").text)
        assert everything
        for query in ("relationship=customer", "relationship=prospect",
                      "relationship=opportunity", "age=week", "age=month", "age=older"):
            key, value = query.split("=")
            with world.store.engine.connect() as conn:
                expected = {c.partner_account_id for c in warmth_checks(
                    conn, "p1", limit=100, **{key: value})}
            assert shown(client.get(f"/portal?{query}").text) == expected, query
            assert expected <= everything


def test_a_partner_opens_the_outcome_of_one_of_its_leads(world: Workspace) -> None:  # noqa: F811
    with TestClient(make_app(world)) as client:
        sign_in(client, "kim@cloudway.example")
        portal = client.get("/portal").text
        assert 'href="/portal/leads/L-a1"' in portal
        page = client.get("/portal/leads/L-a1")
    assert page.status_code == 200 and "Outcome:" in page.text and "surfaced" in page.text


def listed(page: str) -> list[str]:
    import re

    return re.findall(r'<tr data-lead="([^"]+)">', page)


def all_leads(world: Workspace) -> list[Lead]:  # noqa: F811
    with world.store.engine.connect() as conn:
        return list(conn.execute(select(Lead)).all())


def test_the_leads_list_sorts_by_any_column_both_ways(world: Workspace) -> None:  # noqa: F811
    rows = all_leads(world)
    with TestClient(make_app(world)) as client:
        sign_in(client, "admin@example.com")
        for key, column in (("warmth", "warmth_score"), ("updated", "updated_at"),
                            ("lead", "lead_id"), ("owner", "owner_id")):
            for desc in (False, True):
                shown = listed(client.get(f"/leads?sort={key}&desc={str(desc).lower()}").text)
                values = {r.lead_id: getattr(r, column) for r in rows}
                assert sorted(shown) == sorted(r.lead_id for r in rows)
                # where NULLs go is the database's rule; the rest is in order
                keys = [(values[i], i) for i in shown if values[i] is not None]
                assert keys == sorted(keys, reverse=desc), (key, desc)


def test_the_leads_list_filters_and_searches(world: Workspace) -> None:  # noqa: F811
    rows = all_leads(world)
    with TestClient(make_app(world)) as client:
        sign_in(client, "admin@example.com")
        by_owner = listed(client.get("/leads?owner=r1").text)
        assert set(by_owner) == {r.lead_id for r in rows if r.owner_id == "r1"} and by_owner
        by_partner = listed(client.get("/leads?partner=p2").text)
        assert set(by_partner) == {r.lead_id for r in rows if r.partner_id == "p2"}
        by_gate = listed(client.get("/leads?gate=warmth").text)
        assert set(by_gate) == {r.lead_id for r in rows if "warmth" in (r.failed_gates or "")}
        by_status = listed(client.get("/leads?status=routed").text)
        assert set(by_status) == {r.lead_id for r in rows if r.status == "routed"}
        # the account name's start, any case; and a partner's name finds its leads
        page = client.get("/leads?q=northwind").text
        assert "Northwind" in page and listed(page)
        assert set(listed(client.get("/leads?q=DATAST").text)) == set(by_partner)
        assert listed(client.get("/leads?q=zzzz-nothing").text) == []


def test_page_links_keep_the_filters_and_the_sort(world: Workspace) -> None:  # noqa: F811
    import doorstep.web.pages as pages_module

    with TestClient(make_app(world)) as client:
        sign_in(client, "admin@example.com")
        original = pages_module.PAGE_SIZE
        pages_module.PAGE_SIZE = 1
        try:
            page = client.get("/leads?partner=p1&sort=warmth&desc=true").text
        finally:
            pages_module.PAGE_SIZE = original
    assert 'href="?offset=50&amp;partner=p1&amp;sort=warmth&amp;desc=true"' in page
