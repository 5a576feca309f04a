"""The qualify stage on a real store: import a workspace, insert overlaps, qualify, look."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_WORLD, write_table
from sqlalchemy import delete, func, insert, select, update

from doorstep.config import Config, IcpConfig, QualifyConfig, WarmthConfig
from doorstep.ingest import import_workspace
from doorstep.qualify import funnel, qualify_leads
from doorstep.store import Store
from doorstep.store.export import export_rows
from doorstep.store.models import Lead, LeadEvent, Overlap, WarmthRequest
from doorstep.track import lead_history
from doorstep.workspace import Workspace

NOW = datetime(2026, 11, 1, 12, 0)

# (account_id, partner_id, partner_account_id, relationship)
OVERLAPS = [
    ("a1", "p1", "x1", "customer"),
    ("a1", "p2", "y1", "prospect"),
    ("a2", "p1", "x2", "opportunity"),
    ("a3", "p2", "y3", "opportunity"),
]


def tables() -> dict[str, list[dict[str, object]]]:
    """SMALL_WORLD plus a second partner, a rep and an account in NA, and their overlaps."""
    world = copy.deepcopy(SMALL_WORLD)
    world["partners"].append({"partner_id": "p2", "name": "Stackly"})
    world["reps"].append(
        {"rep_id": "r3", "name": "Ken Thompson", "email": "ken@example.com", "territory": "NA",
         "capacity": 1, "active": "true"}
    )  # fmt: skip
    world["accounts"].append(
        {"account_id": "a3", "name": "Crestline Software", "country": "US",
         "industry": "software", "employees": 300, "territory": "NA", "is_customer": "false"}
    )  # fmt: skip
    world["partner_accounts"] += [
        {"partner_id": "p1", "partner_account_id": "x2", "name": "Bluepeak",
         "relationship": "opportunity"},
        {"partner_id": "p2", "partner_account_id": "y1", "name": "Northwind Analytics",
         "relationship": "prospect"},
        {"partner_id": "p2", "partner_account_id": "y3", "name": "CRESTLINE SOFTWARE INC",
         "relationship": "opportunity", "partner_owner_email": "sam@stackly.example",
         "last_activity_at": "2026-10-20T10:00:00", "relationship_strength": 5,
         "contacts_engaged": 4},
    ]  # fmt: skip
    return world


def build(
    tmp_path: Path,
    store: Store,
    config: Config | None = None,
    world: dict[str, list[dict[str, object]]] | None = None,
    overlaps: list[tuple[str, str, str, str]] = OVERLAPS,
) -> Workspace:
    """Write the workspace, import it, insert the overlaps; the workspace to qualify."""
    folder = tmp_path / "ws"
    for name, rows in (world or tables()).items():
        write_table(folder, name, rows)
    report = import_workspace(folder, store)
    assert report.quarantined == 0
    with store.engine.begin() as conn:
        conn.execute(
            insert(Overlap),
            [
                {"account_id": a, "partner_id": p, "partner_account_id": x, "relationship": r,
                 "method": "domain", "probability": 0.99, "evidence": None, "mapped_at": NOW}
                for a, p, x, r in overlaps
            ],
        )  # fmt: skip
    return Workspace(folder, config or Config(), store)


def answer(workspace: Workspace, partner_account_id: str, said: str, at: str) -> None:
    """The partner answers a warmth check: one more row in warmth_answers, re-imported."""
    world = tables()
    partner_id = "p1" if partner_account_id.startswith("x") else "p2"
    world["warmth_answers"].append(
        {"partner_id": partner_id, "partner_account_id": partner_account_id, "answer": said,
         "answered_at": at}
    )  # fmt: skip
    write_table(workspace.path, "warmth_answers", world["warmth_answers"])
    import_workspace(workspace.path, workspace.store)


def leads(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {r["lead_id"]: dict(r) for r in conn.execute(select(Lead)).mappings()}


def count(store: Store, model: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_confirmed_customer_path_with_fit_and_owner_is_an_eql(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["status"] == "eql"
    assert (lead["partner_id"], lead["partner_account_id"]) == ("p1", "x1")
    assert (lead["failed_gates"], lead["reason"]) == ("", "all four gates passed")
    assert (lead["owner_id"], lead["action"]) == ("r1", "partner_intro")
    assert lead["due_at"] == NOW + timedelta(days=3)
    assert set(lead["gates"]) == {"overlap", "warmth", "fit", "motion"}
    assert all(g["passed"] for g in lead["gates"].values())
    assert lead["warmth_score"] == lead["gates"]["warmth"]["score"] > 0
    assert sum(lead["gates"]["warmth"]["parts"].values()) == pytest.approx(
        lead["warmth_score"], abs=0.05
    )


def test_best_partner_path_is_chosen_and_the_others_listed(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["partner_id"] == "p1"  # confirmed strong beats an unanswered prospect
    assert [(o["partner_id"], o["partner_account_id"]) for o in lead["other_partners"]] == [
        ("p2", "y1")
    ]
    assert lead["gates"]["overlap"]["partners"] == ["p1", "p2"]


def test_existing_customers_are_excluded_by_default(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    report = qualify_leads(workspace, now=NOW)
    assert "L-a2" not in leads(store)
    assert report.excluded_customers == 1


def test_existing_customers_are_qualified_when_configured(tmp_path: Path, store: Store) -> None:
    config = Config(qualify=QualifyConfig(include_customers=True))
    workspace = build(tmp_path, store, config)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a2"]
    assert lead["gates"]["overlap"]["passed"]
    assert (lead["status"], lead["failed_gates"]) == ("candidate", "warmth")  # a cold overlap


def test_unanswered_warm_path_waits_for_the_partner_and_is_asked_once(
    tmp_path: Path, store: Store
) -> None:
    workspace = build(tmp_path, store)
    first = qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a3"]
    assert lead["status"] == "warmth_requested"
    assert lead["failed_gates"] == "warmth"
    assert lead["reason"].startswith("waiting for partner p2 to confirm warmth")
    assert lead["owner_id"] is None and lead["due_at"] is None  # not an EQL yet
    assert first.warmth_requests == 1  # y3; y1 on a1 is too cold to ask

    again = qualify_leads(workspace, now=NOW + timedelta(hours=1))
    assert again.warmth_requests == 0
    assert count(store, WarmthRequest) == 1
    rows = list(export_rows(store, "warmth_requests"))
    assert rows[0] == (
        "partner_id",
        "partner_account_id",
        "account_name",
        "relationship",
        "warmth_score",
        "requested_at",
    )
    assert [r[:4] for r in rows[1:]] == [("p2", "y3", "CRESTLINE SOFTWARE INC", "opportunity")]
    assert rows[1][4] == lead["warmth_score"]
    assert rows[1][5] == NOW  # asked on the first run, not again


def test_too_cold_to_ask_is_a_candidate_and_not_asked(tmp_path: Path, store: Store) -> None:
    config = Config(warmth=WarmthConfig(min_score=90))
    workspace = build(tmp_path, store, config)
    report = qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a3"]
    assert lead["status"] == "candidate"
    assert lead["reason"].endswith("is below 90; too cold to ask")
    assert report.warmth_requests == 0


def test_a_refusal_keeps_the_lead_a_candidate_naming_partner_and_date(
    tmp_path: Path, store: Store
) -> None:
    workspace = build(tmp_path, store)
    answer(workspace, "y3", "none", "2026-10-28T08:00:00")
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a3"]
    assert lead["status"] == "candidate"
    assert lead["reason"] == "partner p2 answered 'none' on 2026-10-28"


def test_only_the_latest_answer_counts(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    answer(workspace, "x1", "none", "2026-10-20T08:00:00")  # after the 'strong' of 2026-10-05
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["status"] != "eql"
    assert lead["gates"]["warmth"]["answer"] != "strong"


def test_poor_fit_is_never_an_eql_even_with_a_strong_answer(tmp_path: Path, store: Store) -> None:
    config = Config(icp=IcpConfig(industries=["fintech", "insurance"]))
    workspace = build(tmp_path, store, config)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["gates"]["warmth"]["passed"]
    assert lead["status"] == "candidate"
    assert lead["failed_gates"] == "fit"
    assert lead["reason"] == "industry 'software' not in ICP (fintech, insurance)"
    assert lead["fit_score"] == 50  # industry failed, employees passed


def test_no_active_rep_means_no_motion(tmp_path: Path, store: Store) -> None:
    world = tables()
    world["reps"][2]["active"] = "false"
    workspace = build(
        tmp_path, store, Config(warmth=WarmthConfig(require_confirmation=False)), world
    )
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a3"]
    assert lead["status"] == "candidate"
    assert lead["failed_gates"] == "motion"
    assert lead["reason"] == "no motion: no account owner; territory NA has no active rep"
    assert lead["owner_id"] is None and lead["action"] is None


def test_without_confirmation_the_minimum_score_decides(tmp_path: Path, store: Store) -> None:
    config = Config(warmth=WarmthConfig(require_confirmation=False, min_score=50))
    workspace = build(tmp_path, store, config)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a3"]
    assert lead["warmth_score"] >= 50
    assert lead["status"] == "eql"
    assert (lead["owner_id"], lead["action"]) == ("r3", "co_sell")  # territory rep, opportunity
    assert lead["due_at"] == NOW + timedelta(days=5)


def test_qualifying_twice_changes_nothing(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    first = qualify_leads(workspace, now=NOW)
    before = leads(store)
    events = count(store, LeadEvent)
    again = qualify_leads(workspace, now=NOW + timedelta(hours=3))  # later the same day
    assert first.created == 2 and first.events == 2
    assert (again.created, again.changed, again.events) == (0, 0, 0)
    assert again.unchanged == 2
    assert leads(store) == before
    assert count(store, LeadEvent) == events


def test_due_at_runs_from_when_the_lead_became_an_eql(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    qualify_leads(workspace, now=NOW + timedelta(days=1))
    assert leads(store)["L-a1"]["due_at"] == NOW + timedelta(days=3)


def test_a_new_answer_moves_only_the_lead_it_answers(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    before = leads(store)
    answer(workspace, "y3", "strong", "2026-11-01T09:00:00")
    later = NOW + timedelta(hours=2)
    report = qualify_leads(workspace, now=later)
    after = leads(store)
    assert after["L-a3"]["status"] == "eql"
    assert (after["L-a3"]["owner_id"], after["L-a3"]["action"]) == ("r3", "co_sell")
    assert after["L-a3"]["due_at"] == later + timedelta(days=5)
    assert report.events == 1
    with store.engine.connect() as conn:
        history = lead_history(conn, "L-a3")
        assert [(e.kind, e.from_status, e.to_status) for e in history] == [
            ("created", None, "warmth_requested"),
            ("status_changed", "warmth_requested", "eql"),
        ]
        assert {e.actor for e in history} == {"doorstep qualify"}
        assert lead_history(conn, "L-a1")[-1].at == NOW  # no new event for the other lead
        status = conn.execute(
            select(WarmthRequest.status).where(WarmthRequest.partner_account_id == "y3")
        ).scalar_one()
    assert status == "answered"
    assert after["L-a1"]["status"] == before["L-a1"]["status"]
    assert list(export_rows(store, "warmth_requests"))[1:] == []


def test_a_vanished_overlap_fails_the_overlap_gate(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    with store.engine.begin() as conn:
        conn.execute(delete(Overlap).where(Overlap.account_id == "a1"))
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["status"] == "candidate"
    assert lead["failed_gates"].split(";")[0] == "overlap"
    assert lead["reason"].startswith("overlap: no partner shares this account any more")
    with store.engine.connect() as conn:
        last = lead_history(conn, "L-a1")[-1]
    assert (last.from_status, last.to_status) == ("eql", "candidate")


def test_leads_past_qualify_are_left_alone_and_keep_their_owner_busy(
    tmp_path: Path, store: Store
) -> None:
    config = Config(warmth=WarmthConfig(require_confirmation=False))
    world = tables()
    world["accounts"].append(
        {"account_id": "a4", "name": "Old Deal", "employees": 100, "territory": "NA"}
    )
    world["partner_accounts"].append(
        {"partner_id": "p1", "partner_account_id": "x4", "name": "Old Deal",
         "relationship": "prospect"}
    )  # fmt: skip
    workspace = build(tmp_path, store, config, world, [*OVERLAPS, ("a4", "p1", "x4", "prospect")])
    with store.engine.begin() as conn:
        conn.execute(
            insert(Lead).values(
                lead_id="L-a4", account_id="a4", status="routed", owner_id="r3",
                reason="routed by act", created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    report = qualify_leads(workspace, now=NOW)
    after = leads(store)
    assert after["L-a4"]["status"] == "routed" and after["L-a4"]["reason"] == "routed by act"
    assert report.past_qualify == 1
    # r3 (capacity 1) already carries the routed lead, so a3 has no owner with room.
    assert after["L-a3"]["failed_gates"] == "motion"
    assert "at capacity" in after["L-a3"]["reason"]


def test_leads_export_has_the_documented_columns(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    rows = list(export_rows(store, "leads"))
    assert rows[0] == (
        "lead_id",
        "account_id",
        "status",
        "partner_id",
        "failed_gates",
        "reason",
        "warmth_score",
        "fit_score",
        "owner_id",
        "action",
        "due_at",
    )
    assert [(r[0], r[2]) for r in rows[1:]] == [("L-a1", "eql"), ("L-a3", "warmth_requested")]


def test_funnel_counts_each_gate_and_the_share_it_lost(tmp_path: Path, store: Store) -> None:
    world = tables()
    world["accounts"].append({"account_id": "a4", "name": "Tiny Co", "employees": 8})
    world["partner_accounts"].append(
        {"partner_id": "p1", "partner_account_id": "x4", "name": "Tiny", "relationship": "customer"}
    )
    world["warmth_answers"].append(
        {"partner_id": "p1", "partner_account_id": "x4", "answer": "some",
         "answered_at": "2026-10-30T10:00:00"}
    )  # fmt: skip
    workspace = build(tmp_path, store, None, world, [*OVERLAPS, ("a4", "p1", "x4", "customer")])
    qualify_leads(workspace, now=NOW)
    steps = {s.step: s for s in funnel(workspace)}
    assert [(name, s.count) for name, s in steps.items()] == [
        ("overlap", 3),  # a1, a3, a4 (a2 is our customer)
        ("warmth", 2),  # a3 still waits for its partner
        ("fit", 1),  # a4 has 8 employees
        ("motion", 1),
        ("eql", 1),
    ]
    warm = steps["warmth"]
    assert warm.lost == 1 and warm.share_lost == pytest.approx(1 / 3, abs=1e-4)
    assert steps["fit"].share_lost == 0.5
    assert steps["overlap"].share_lost == 0


def test_a_lead_whose_status_is_changed_elsewhere_is_not_touched(
    tmp_path: Path, store: Store
) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    with store.engine.begin() as conn:
        conn.execute(update(Lead).where(Lead.lead_id == "L-a1").values(status="accepted"))
    report = qualify_leads(workspace, now=NOW)
    assert leads(store)["L-a1"]["status"] == "accepted"
    assert report.events == 0


def with_history(world: dict[str, list[dict[str, object]]], software_wins: bool) -> None:
    """Eight closed deals: software accounts won (or lost), retail the opposite."""
    for i in range(8):
        software = i % 2 == 0
        world["accounts"].append(
            {"account_id": f"h{i}", "name": f"Past {i}", "employees": 200 + i,
             "industry": "software" if software else "retail", "country": "DE"}
        )  # fmt: skip
        world["opportunities"].append(
            {"opportunity_id": f"o-h{i}", "account_id": f"h{i}", "created_at": "2026-01-01",
             "closed_at": "2026-03-01", "is_won": str(software == software_wins).lower()}
        )  # fmt: skip


def test_learned_fit_fails_accounts_like_the_ones_we_lost(tmp_path: Path, store: Store) -> None:
    pytest.importorskip("sklearn")
    world = tables()
    with_history(world, software_wins=False)
    config = Config(icp=IcpConfig(learned_min_probability=0.5, learned_min_history=6))
    workspace = build(tmp_path, store, config, world)
    report = qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]  # software, with a strong answer
    assert lead["status"] == "candidate" and lead["failed_gates"] == "fit"
    assert lead["reason"].startswith("learned win probability 0.")
    assert lead["reason"].endswith("below ICP minimum 0.50")
    assert report.notes == ["learned fit trained on 9 accounts"]  # a2's won deal counts too


def test_learned_fit_passes_accounts_like_the_ones_we_won(tmp_path: Path, store: Store) -> None:
    pytest.importorskip("sklearn")
    world = tables()
    with_history(world, software_wins=True)
    config = Config(icp=IcpConfig(learned_min_probability=0.5, learned_min_history=6))
    workspace = build(tmp_path, store, config, world)
    qualify_leads(workspace, now=NOW)
    lead = leads(store)["L-a1"]
    assert lead["status"] == "eql"
    rules = {r["rule"]: r for r in lead["gates"]["fit"]["rules"]}
    assert rules["learned"]["passed"] and "within ICP (at least 0.50)" in rules["learned"]["reason"]


def test_learned_fit_without_enough_history_is_skipped_and_said(
    tmp_path: Path, store: Store
) -> None:
    config = Config(icp=IcpConfig(learned_min_probability=0.5))
    workspace = build(tmp_path, store, config)
    report = qualify_leads(workspace, now=NOW)
    assert report.notes[0].startswith("learned fit skipped: 1 account with a closed opportunity")
    assert leads(store)["L-a1"]["status"] == "eql"


def test_intros_a_partner_made_raise_its_track_record(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    before = leads(store)["L-a1"]["gates"]["warmth"]["parts"]["track_record"]
    # p1 made two intros we asked for on earlier leads; p2 left one without a contact
    with store.engine.begin() as conn:
        conn.execute(insert(Lead), [
            {"lead_id": f"L-old{k}", "account_id": f"old{k}", "status": status, "reason": reason,
             "created_at": NOW, "updated_at": NOW}
            for k, status, reason in ((1, "won", None), (2, "intro_made", None),
                                      (3, "rejected", "rejected: no_contact"))
        ])
        conn.execute(insert(LeadEvent), [
            {"lead_id": lead_id, "kind": kind, "to_status": kind, "actor": "test", "at": NOW,
             "detail": {"partner_id": partner} if kind == "intro_requested" else None}
            for lead_id, kind, partner in (
                ("L-old1", "intro_requested", "p1"), ("L-old1", "intro_made", None),
                ("L-old2", "intro_requested", "p1"), ("L-old2", "intro_made", None),
                ("L-old3", "intro_requested", "p2"),
            )
        ])  # fmt: skip
    qualify_leads(workspace, now=NOW)
    after = leads(store)
    assert after["L-a1"]["gates"]["warmth"]["parts"]["track_record"] > before
    assert after["L-a3"]["gates"]["warmth"]["parts"]["track_record"] < 5.0


def test_a_rerun_days_later_says_only_the_clock_moved_warmth(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    events = count(store, LeadEvent)
    later = qualify_leads(workspace, now=NOW + timedelta(days=9))
    assert later.created == 0 and later.events == 0 and count(store, LeadEvent) == events
    assert later.changed > 0 and later.clock_only == later.changed  # recency, nothing else


def test_the_cli_says_nothing_changed_or_that_only_the_clock_did(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from doorstep.cli import print_qualify

    workspace = build(tmp_path, store)
    qualify_leads(workspace, now=NOW)
    capsys.readouterr()
    runner_output: list[str] = []
    for when in (NOW, NOW + timedelta(days=9)):
        print_qualify(workspace, qualify_leads(workspace, now=when))
        runner_output.append(" ".join(capsys.readouterr().out.split()))
    assert runner_output[0].startswith("Nothing changed (2 leads).")
    assert runner_output[1].startswith(
        "Nothing changed: only warmth recency moved with the clock, in the warmth scores of "
    )
