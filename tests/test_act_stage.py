"""The act stage: routing EQLs, queuing motions once, partner requests, overdue escalation."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from doorstep.act import LeadActionError, accept_lead, act, mark_intro_made, reject_lead
from doorstep.act.outbox import Templates, idempotency_key
from doorstep.config import CONFIG_FILE, ConfigError
from doorstep.qualify import qualify_leads
from doorstep.store.events import lead_history
from doorstep.store.export import write_csv
from doorstep.store.models import IMPORTED_MODELS, Delivery, Lead, LeadEvent, Overlap
from doorstep.workspace import Workspace, open_workspace

NOW = datetime(2026, 11, 24, 9, 0)

ACT_WORLD: dict[str, list[dict[str, Any]]] = {
    "reps": [
        {"rep_id": "r1", "name": "Ada", "email": "ada@example.com", "territory": "EMEA",
         "capacity": 5, "active": True, "manager_id": "boss"},
        {"rep_id": "r2", "name": "Bea", "email": "bea@example.com", "territory": "EMEA",
         "capacity": 5, "active": True},
        {"rep_id": "r3", "name": "Cy", "email": "cy@example.com", "territory": "NA",
         "capacity": 5, "active": False},
        {"rep_id": "boss", "name": "Dee", "email": "dee@example.com", "capacity": 0,
         "active": True},
        {"rep_id": "pm", "name": "Eve", "email": "eve@example.com", "capacity": 10,
         "active": True},
    ],
    "partners": [
        {"partner_id": "p1", "name": "Cloudway", "partner_manager_id": "pm",
         "contact_email": "alliances@cloudway.example"},
    ],
    "accounts": [
        # a1: owned by an active rep; a2: owner inactive, EMEA round robin; a3: NA, nobody.
        {"account_id": "a1", "name": "Northwind", "country": "DE", "employees": 250,
         "owner_id": "r1", "territory": "EMEA", "is_customer": False},
        {"account_id": "a2", "name": "Bluepeak", "country": "GB", "employees": 1200,
         "owner_id": "r3", "territory": "EMEA", "is_customer": False},
        {"account_id": "a3", "name": "Redrock", "country": "US", "employees": 90,
         "owner_id": "r3", "territory": "NA", "is_customer": False},
    ],
    "partner_accounts": [
        {"partner_id": "p1", "partner_account_id": "x1", "name": "NORTHWIND",
         "relationship": "customer", "partner_owner_email": "kim@cloudway.example"},
        {"partner_id": "p1", "partner_account_id": "x2", "name": "BLUEPEAK",
         "relationship": "opportunity"},
        {"partner_id": "p1", "partner_account_id": "x3", "name": "REDROCK",
         "relationship": "prospect"},
    ],
    "warmth_answers": [
        {"partner_id": "p1", "partner_account_id": "x1", "answer": "strong",
         "answered_at": datetime(2026, 11, 1, 9, 0)},
    ],
}

# The EQLs qualify would have written: account, partner path, warmth.
ACT_EQLS = [("a1", "x1", 82.0), ("a2", "x2", 64.0), ("a3", "x3", 55.0)]


def insert_world(workspace: Workspace, world: dict[str, list[dict[str, Any]]]) -> None:
    """Write workspace tables straight into the store, as an import would leave them.

    A key that is not a column of the table becomes an extra attribute (like `manager_id`).
    """
    with workspace.store.engine.begin() as conn:
        for name, rows in world.items():
            model = IMPORTED_MODELS[name]
            columns = set(model.__table__.columns.keys())
            records = []
            for row in rows:
                extra = {k: v for k, v in row.items() if k not in columns}
                known = {k: row.get(k) for k in columns - {"attributes", "row_hash"}}
                records.append({**known, "attributes": extra or None, "row_hash": "test"})
            if records:
                conn.execute(insert(model), records)


def build_act_workspace(
    folder: Path,
    store_url: str,
    *,
    toml: str = "",
    world: dict[str, list[dict[str, Any]]] | None = None,
    eqls: list[tuple[str, str, float]] | None = None,
    now: datetime = NOW,
) -> Workspace:
    """A workspace with reps, a partner, accounts and overlaps, qualified by the real qualify
    stage (whose motion gate routes each EQL) at NOW, as act finds them.

    Warmth needs no confirmation here; each overlap's relationship strength is set from the
    given warmth, so the warmer overlap really scores higher.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = f'[store]\nurl = "{store_url}"\n\n[warmth]\nrequire_confirmation = false\n'
    config += f"min_score = 0\n\n{toml}"
    (folder / CONFIG_FILE).write_text(config, encoding="utf-8")
    workspace = open_workspace(folder)
    base = world or ACT_WORLD
    pairs = ACT_EQLS if eqls is None else eqls
    strength = {pa: max(1, min(5, round(warmth / 20))) for _, pa, warmth in pairs}
    insert_world(workspace, {
        **base,
        "partner_accounts": [
            {**row, "relationship_strength": strength.get(row["partner_account_id"]),
             "last_activity_at": NOW - timedelta(days=3)}
            for row in base["partner_accounts"]
        ],
    })
    overlaps = [
        {"account_id": account_id, "partner_id": "p1", "partner_account_id": pa,
         "relationship": next(r["relationship"] for r in base["partner_accounts"]
                              if r["partner_account_id"] == pa),
         "method": "domain", "probability": 1.0, "evidence": None,
         "mapped_at": NOW - timedelta(days=2)}
        for account_id, pa, _ in pairs
    ]
    with workspace.store.engine.begin() as conn:
        conn.execute(insert(Overlap), overlaps)
    qualify_leads(workspace, now=now)
    return workspace


@pytest.fixture
def act_workspace(tmp_path: Path, store_url: str) -> Iterator[Workspace]:
    """The act world, queuing to email (nothing is sent unless a test asks)."""
    workspace = build_act_workspace(tmp_path / "ws", store_url)
    yield workspace
    workspace.store.engine.dispose()


def leads_by_id(workspace: Workspace) -> dict[str, Any]:
    with workspace.store.engine.connect() as conn:
        return {r.lead_id: r for r in conn.execute(select(Lead))}


def deliveries(workspace: Workspace) -> list[Any]:
    with workspace.store.engine.connect() as conn:
        return list(conn.execute(select(Delivery).order_by(Delivery.delivery_id)))


def count_events(workspace: Workspace) -> int:
    with workspace.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one())


def test_act_routes_each_eql_by_the_first_rule_that_resolves(act_workspace: Workspace) -> None:
    report = act(act_workspace, now=NOW, send=False)
    routed = {r.lead_id: r for r in report.routed}
    assert routed["L-a1"].owner_id == "r1" and routed["L-a1"].rule == "account_owner"
    assert routed["L-a1"].action == "partner_intro"  # customer, answered strong
    assert routed["L-a1"].due_at == NOW + timedelta(days=3)
    assert routed["L-a2"].rule == "territory_round_robin"
    assert routed["L-a2"].owner_id == "r2"  # r1 has one open lead now, r2 none
    assert routed["L-a2"].action == "co_sell"  # the partner works an opportunity there
    leads = leads_by_id(act_workspace)
    assert (leads["L-a1"].status, leads["L-a1"].owner_id) == ("routed", "r1")
    assert leads["L-a2"].due_at == NOW + timedelta(days=5)


def test_an_eql_nobody_can_own_is_a_candidate_with_no_motion_and_act_leaves_it(
    act_workspace: Workspace,
) -> None:
    lead = leads_by_id(act_workspace)["L-a3"]
    assert lead.status == "candidate"  # the motion gate decided, in qualify
    assert lead.reason.startswith("no motion:")
    assert "territory NA has no active rep" in lead.reason
    assert lead.failed_gates == "motion" and lead.owner_id is None and lead.due_at is None
    assert lead.gates["motion"]["passed"] is False
    before = dict(lead.gates)
    report = act(act_workspace, now=NOW, send=False)
    assert "L-a3" not in {r.lead_id for r in report.routed}
    after = leads_by_id(act_workspace)["L-a3"]
    assert after.gates == before and after.status == "candidate"  # act rewrites no verdict


def test_act_routes_as_the_motion_gate_decided_and_never_reroutes(
    act_workspace: Workspace,
) -> None:
    decided = {k: (v.owner_id, v.action, v.due_at) for k, v in leads_by_id(act_workspace).items()
               if v.status == "eql"}
    report = act(act_workspace, now=NOW, send=False)
    assert {r.lead_id: (r.owner_id, r.action, r.due_at) for r in report.routed} == decided


def test_an_eql_whose_owner_went_inactive_is_held_not_rerouted(
    act_workspace: Workspace,
) -> None:
    from sqlalchemy import update

    from doorstep.store.models import Rep

    with act_workspace.store.engine.begin() as conn:
        conn.execute(update(Rep).where(Rep.rep_id == "r1").values(active=False))
    report = act(act_workspace, now=NOW, send=False)
    held = {u.lead_id: u.reason for u in report.no_motion}
    assert "L-a1" in held and "run `doorstep qualify`" in held["L-a1"]
    assert leads_by_id(act_workspace)["L-a1"].status == "eql"


def test_routed_owners_get_one_assignment_and_rerunning_queues_nothing(
    act_workspace: Workspace,
) -> None:
    first = act(act_workspace, now=NOW, send=False)
    assert first.queued == {"assignment": 2}
    sent_to = {(d.lead_id, d.recipient, d.channel) for d in deliveries(act_workspace)}
    assert sent_to == {
        ("L-a1", "ada@example.com", "email"),
        ("L-a2", "bea@example.com", "email"),
    }
    events = count_events(act_workspace)
    second = act(act_workspace, now=NOW + timedelta(hours=1), send=False)
    assert second.routed == [] and second.queued == {}
    assert len(deliveries(act_workspace)) == 2
    assert count_events(act_workspace) == events


def test_assignment_is_rendered_from_the_default_template(act_workspace: Workspace) -> None:
    act(act_workspace, now=NOW, send=False)
    mine = [d for d in deliveries(act_workspace) if d.lead_id == "L-a1"][0]
    assert mine.payload["subject"] == (
        "New partner introduction lead: Northwind (due 2026-11-27)"
    )
    assert "ask Cloudway to introduce you" in mine.payload["text"]
    assert mine.idempotency_key == idempotency_key("L-a1", "assignment", "ada@example.com", "email")
    assert mine.status == "pending" and mine.attempts == 0


def test_a_workspace_template_overrides_the_default(act_workspace: Workspace) -> None:
    folder = act_workspace.path / "templates"
    folder.mkdir()
    (folder / "assignment.j2").write_text(
        "Subject: {{ account.name }} is yours\n\nGo, {{ owner.name }}!\n", encoding="utf-8"
    )
    act(act_workspace, now=NOW, send=False)
    by_lead = {d.lead_id: d.payload for d in deliveries(act_workspace)}
    assert by_lead["L-a1"] == {
        "subject": "Northwind is yours",
        "text": "Go, Ada!\n",
        "data": by_lead["L-a1"]["data"],
    }
    assert by_lead["L-a1"]["data"]["lead"]["due_at"] == "2026-11-27T09:00:00"


def test_a_broken_template_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "assignment.j2").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"assignment\.j2: line 1"):
        Templates(tmp_path).render("assignment", {})


def test_accepting_an_intro_lead_asks_the_partner_once_on_the_next_run(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    accept_lead(act_workspace, "L-a1", now=NOW + timedelta(hours=1))
    report = act(act_workspace, now=NOW + timedelta(hours=2), send=False)
    assert report.intro_requested == ["L-a1"]
    assert report.queued == {"partner_intro": 1}
    request = [d for d in deliveries(act_workspace) if d.action == "partner_intro"]
    assert [d.recipient for d in request] == ["kim@cloudway.example"]  # the partner's owner
    assert "introduce our colleague Ada (ada@example.com)" in request[0].payload["text"]
    assert leads_by_id(act_workspace)["L-a1"].status == "intro_requested"
    again = act(act_workspace, now=NOW + timedelta(hours=3), send=False)
    assert again.intro_requested == [] and again.queued == {}
    with act_workspace.store.engine.connect() as conn:
        kinds = [e.kind for e in lead_history(conn, "L-a1")]
    assert kinds == ["created", "routed", "accepted", "intro_requested"]


def test_accepted_co_sell_goes_to_the_partner_contact_and_stays_accepted(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    accept_lead(act_workspace, "L-a2", actor="bea@example.com", now=NOW)
    report = act(act_workspace, now=NOW + timedelta(hours=1), send=False)
    assert report.queued == {"co_sell": 1}
    proposal = [d for d in deliveries(act_workspace) if d.action == "co_sell"][0]
    assert proposal.recipient == "alliances@cloudway.example"  # no partner_owner_email on x2
    assert leads_by_id(act_workspace)["L-a2"].status == "accepted"


def test_an_overdue_motion_is_escalated_to_the_owners_manager_once(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    late = NOW + timedelta(days=4)  # L-a1's intro was due in 3 days, L-a2's co-sell in 5
    report = act(act_workspace, now=late, send=False)
    assert [(o.lead_id, o.escalated_to, o.escalated_now) for o in report.overdue] == [
        ("L-a1", "dee@example.com", True)
    ]
    assert report.overdue[0].days_overdue == 1.0
    assert report.queued == {"escalation": 1}
    escalation = [d for d in deliveries(act_workspace) if d.action == "escalation"][0]
    assert escalation.payload["subject"] == "Overdue partner introduction: Northwind (1 day late)"
    assert "Hi Dee," in escalation.payload["text"]
    again = act(act_workspace, now=late + timedelta(days=1), send=False)
    assert [(o.lead_id, o.escalated_to, o.escalated_now) for o in again.overdue] == [
        ("L-a1", "dee@example.com", False)
    ]
    assert again.queued == {} and again.escalations == 0
    with act_workspace.store.engine.connect() as conn:
        kinds = [e.kind for e in lead_history(conn, "L-a1")]
    assert kinds.count("escalated") == 1


def test_without_a_manager_the_partner_manager_gets_the_escalation(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    report = act(act_workspace, now=NOW + timedelta(days=6), send=False)
    targets = {o.lead_id: o.escalated_to for o in report.overdue}
    assert targets == {"L-a1": "dee@example.com", "L-a2": "eve@example.com"}


def test_a_motion_that_is_done_is_not_overdue(act_workspace: Workspace) -> None:
    act(act_workspace, now=NOW, send=False)
    accept_lead(act_workspace, "L-a2", now=NOW)  # a co-sell is done once the owner accepts
    reject_lead(act_workspace, "L-a1", "already_working", now=NOW)
    report = act(act_workspace, now=NOW + timedelta(days=30), send=False)
    assert report.overdue == []


def test_a_full_account_owner_is_skipped_for_the_territory(
    tmp_path: Path, store_url: str
) -> None:
    world = {**ACT_WORLD, "reps": [dict(r) for r in ACT_WORLD["reps"]]}
    world["reps"][0]["capacity"] = 0  # r1 is full
    workspace = build_act_workspace(tmp_path / "ws", store_url, world=world)
    report = act(workspace, now=NOW, send=False)
    routed = {r.lead_id: (r.owner_id, r.rule) for r in report.routed}
    assert routed["L-a1"] == ("r2", "territory_round_robin")
    workspace.store.engine.dispose()


def test_routing_rules_from_the_config_with_conditions_and_a_queue(
    tmp_path: Path, store_url: str
) -> None:
    toml = """
[routing]
rules = [
  { rule = "partner_manager", when = { warmth_band = "high", relationship = "customer" } },
  { rule = "account_owner", when = { employees = { min = 1000 } } },
  { rule = "queue", queue = "partner-leads@example.com", action = "rep_outreach" },
]
"""
    workspace = build_act_workspace(tmp_path / "ws", store_url, toml=toml)
    report = act(workspace, now=NOW, send=False)
    routed = {r.lead_id: (r.owner_id, r.rule, r.action) for r in report.routed}
    assert routed == {
        "L-a1": ("pm", "partner_manager", "partner_intro"),  # warmth 82 is high
        # a2's owner r3 is inactive, so the account_owner rule fails and the queue takes it
        "L-a2": ("partner-leads@example.com", "queue", "rep_outreach"),
        "L-a3": ("partner-leads@example.com", "queue", "rep_outreach"),
    }
    recipients = {d.lead_id: d.recipient for d in deliveries(workspace)}
    assert recipients["L-a3"] == "partner-leads@example.com"
    workspace.store.engine.dispose()


def test_capacity_counts_open_leads_and_goes_to_the_warmest_first(
    tmp_path: Path, store_url: str
) -> None:
    world = {**ACT_WORLD, "reps": [dict(r) for r in ACT_WORLD["reps"]]}
    world["reps"][0]["capacity"] = 1
    world["reps"][1]["active"] = False
    world["accounts"] = [
        {**ACT_WORLD["accounts"][0], "account_id": f"e{i}", "name": f"E{i}"} for i in range(3)
    ]
    eqls = [("e0", "x1", 20.0), ("e1", "x2", 100.0), ("e2", "x3", 60.0)]
    workspace = build_act_workspace(tmp_path / "ws", store_url, world=world, eqls=eqls)
    leads = leads_by_id(workspace)
    warmest = max(leads.values(), key=lambda lead: lead.warmth_score).lead_id
    report = act(workspace, now=NOW, send=False)
    assert [(r.lead_id, r.owner_id) for r in report.routed] == [(warmest, "r1")]
    others = [lead for lead in leads_by_id(workspace).values() if lead.lead_id != warmest]
    assert {lead.status for lead in others} == {"candidate"}
    assert all("account owner r1 is at capacity (1 of 1 taken)" in lead.reason for lead in others)
    workspace.store.engine.dispose()


def export_rows(workspace: Workspace, table: str) -> list[dict[str, str]]:
    out = io.StringIO()
    write_csv(workspace.store, table, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_deliveries_and_events_export_with_their_columns(act_workspace: Workspace) -> None:
    act(act_workspace, now=NOW, send=False)
    rows = export_rows(act_workspace, "deliveries")
    assert list(rows[0])[:8] == [
        "delivery_id", "lead_id", "channel", "recipient", "action", "idempotency_key",
        "status", "attempts",
    ]
    assert {"last_error", "sent_at"} <= set(rows[0])
    assert sorted((r["lead_id"], r["status"]) for r in rows) == [
        ("L-a1", "pending"), ("L-a2", "pending"),
    ]
    events = export_rows(act_workspace, "events")
    assert list(events[0])[:7] == [
        "event_id", "lead_id", "kind", "from_status", "to_status", "actor", "at",
    ]
    assert {(e["lead_id"], e["kind"], e["to_status"]) for e in events} == {
        ("L-a1", "created", "eql"),
        ("L-a2", "created", "eql"),
        ("L-a3", "created", "candidate"),
        ("L-a1", "routed", "routed"),
        ("L-a2", "routed", "routed"),
    }


def test_a_webhook_channel_without_a_url_is_refused_before_anything_changes(
    tmp_path: Path, store_url: str
) -> None:
    toml = '[act]\nchannels = { rep = ["webhook"] }\n'
    workspace = build_act_workspace(tmp_path / "ws", store_url, toml=toml)
    with pytest.raises(ConfigError, match="webhook_url is not set"):
        act(workspace, now=NOW, send=False)
    assert {lead.status for lead in leads_by_id(workspace).values()} == {"eql", "candidate"}
    workspace.store.engine.dispose()



# --- rep actions -------------------------------------------------------------------------


def test_accepting_records_one_event_by_the_owner_and_cannot_happen_twice(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    change = accept_lead(act_workspace, "L-a1", now=NOW)
    assert (change.from_status, change.to_status, change.actor) == ("routed", "accepted", "r1")
    with pytest.raises(LeadActionError, match="lead L-a1 is accepted; it must be routed"):
        accept_lead(act_workspace, "L-a1", now=NOW)
    with act_workspace.store.engine.connect() as conn:
        history = lead_history(conn, "L-a1")
    assert [(e.kind, e.actor) for e in history] == [
        ("created", "doorstep qualify"), ("routed", "doorstep act"), ("accepted", "r1")
    ]


def test_rejecting_needs_a_listed_reason_and_drops_unsent_messages(
    act_workspace: Workspace,
) -> None:
    act(act_workspace, now=NOW, send=False)
    with pytest.raises(LeadActionError, match="not one of: bad_fit, already_working"):
        reject_lead(act_workspace, "L-a1", "too busy", now=NOW)
    change = reject_lead(
        act_workspace, "L-a1", "already_working", note="in talks since May",
        actor="ada@example.com", now=NOW,
    )
    assert change.detail == {"reason": "already_working", "note": "in talks since May"}
    lead = leads_by_id(act_workspace)["L-a1"]
    assert lead.status == "rejected"
    assert lead.reason == "rejected: already_working (in talks since May)"
    by_lead = {d.lead_id: d.status for d in deliveries(act_workspace)}
    assert by_lead == {"L-a1": "cancelled", "L-a2": "pending"}
    again = act(act_workspace, now=NOW + timedelta(hours=1), send=False)
    assert again.queued == {} and again.routed == []  # a rejected lead is never re-routed


def test_the_intro_is_made_after_acceptance_not_before(act_workspace: Workspace) -> None:
    act(act_workspace, now=NOW, send=False)
    with pytest.raises(LeadActionError, match="it must be accepted or intro requested"):
        mark_intro_made(act_workspace, "L-a1", now=NOW)
    accept_lead(act_workspace, "L-a1", now=NOW)
    act(act_workspace, now=NOW, send=False)  # asks the partner
    change = mark_intro_made(act_workspace, "L-a1", actor="kim@cloudway.example", now=NOW)
    assert (change.from_status, change.to_status) == ("intro_requested", "intro_made")
    late = act(act_workspace, now=NOW + timedelta(days=10), send=False)
    assert [o.lead_id for o in late.overdue] == ["L-a2"]  # L-a1's intro is done


def test_an_action_on_an_unknown_lead_or_a_candidate_is_refused(act_workspace: Workspace) -> None:
    act(act_workspace, now=NOW, send=False)
    with pytest.raises(LeadActionError, match="there is no lead L-zz"):
        accept_lead(act_workspace, "L-zz")
    with pytest.raises(LeadActionError, match="lead L-a3 is candidate; it must be routed"):
        reject_lead(act_workspace, "L-a3", "bad_fit")


def test_two_act_runs_at_once_route_and_queue_each_lead_once(act_workspace: Workspace) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            act(act_workspace, now=NOW, send=False)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with act_workspace.store.engine.connect() as conn:
        routed_events = conn.execute(
            select(LeadEvent.lead_id).where(LeadEvent.kind == "routed")
        ).scalars().all()
        routed_leads = conn.execute(
            select(Lead.lead_id).where(Lead.status == "routed")
        ).scalars().all()
        keys = conn.execute(select(Delivery.idempotency_key)).scalars().all()
    assert sorted(routed_events) == sorted(routed_leads) and routed_leads
    assert len(keys) == len(set(keys))
