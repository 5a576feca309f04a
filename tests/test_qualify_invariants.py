"""Product invariants of qualify, on generated worlds (hypothesis).

No EQL on a cold or refused partner path, a failed fit rule or without a motion; qualifying
twice changes nothing; a new partner answer moves exactly the leads it affects.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from doorstep.config import Config, IcpConfig, QualifyConfig, WarmthConfig
from doorstep.qualify import qualify_leads
from doorstep.qualify.fit import AccountFacts, icp_rules
from doorstep.qualify.gates import fit_verdict
from doorstep.qualify.motion import RepFacts
from doorstep.qualify.stage import Evidence, decide_leads
from doorstep.qualify.warmth import POSITIVE_ANSWERS, PartnerPath, track_records
from doorstep.store import Store, open_store
from doorstep.store.bulk import bulk_write, table_of
from doorstep.store.models import (
    Account,
    Lead,
    LeadEvent,
    Overlap,
    Partner,
    PartnerAccount,
    Rep,
    WarmthAnswer,
    WarmthRequest,
)
from doorstep.workspace import Workspace

NOW = datetime(2026, 11, 1)
PARTNERS = ("p1", "p2", "p3")
TERRITORIES = ("EU", "NA")


@dataclass
class World:
    """Rows for every table qualify reads, and the configuration to qualify with."""

    config: Config
    reps: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    partner_accounts: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)

    def overlaps(self) -> list[tuple[str, str, str, str]]:
        return [
            (pa["account_id"], pa["partner_id"], pa["partner_account_id"], pa["relationship"])
            for pa in self.partner_accounts
        ]


maybe_days = st.one_of(st.none(), st.integers(0, 400))


@st.composite
def worlds(
    draw: st.DrawFn,
    capacities: st.SearchStrategy[int | None] | None = None,
    min_accounts: int = 1,
) -> World:
    """A small world: up to 3 reps, 6 accounts, 3 partners per account, 2 answers per path."""
    config = Config(
        icp=IcpConfig(
            industries=draw(st.sampled_from([[], ["software"], ["software", "fintech"]])),
            countries=draw(st.sampled_from([[], ["DE"], ["DE", "US"]])),
            employees_min=draw(st.sampled_from([None, 50])),
            employees_max=draw(st.sampled_from([None, 5000])),
        ),
        warmth=WarmthConfig(
            require_confirmation=draw(st.booleans()),
            min_score=draw(st.sampled_from([0, 30, 50, 80])),
        ),
        qualify=QualifyConfig(include_customers=draw(st.booleans())),
    )
    world = World(config)
    capacity = capacities if capacities is not None else st.sampled_from([None, 0, 1, 2])
    for i in range(draw(st.integers(0, 3))):
        world.reps.append(
            {
                "rep_id": f"r{i}",
                "territory": draw(st.sampled_from(TERRITORIES)),
                "capacity": draw(capacity),
                "active": draw(st.sampled_from([True, False, None])),
            }
        )
    rep_ids = [None, *(r["rep_id"] for r in world.reps)]
    for i in range(draw(st.integers(min_accounts, 6))):
        account_id = f"a{i}"
        world.accounts.append(
            {
                "account_id": account_id,
                # Mostly fitting values, so that many worlds reach the later gates.
                "country": draw(st.sampled_from(["DE", "DE", "Germany", "US", "FR", None])),
                "industry": draw(
                    st.sampled_from(["software", "software", "fintech", "retail", None])
                ),
                "employees": draw(st.sampled_from([200, 200, 200, 10, 9000, None])),
                "owner_id": draw(st.sampled_from(rep_ids)),
                "territory": draw(st.sampled_from([None, *TERRITORIES])),
                "is_customer": draw(st.booleans()),
            }
        )
        for partner_id in draw(st.lists(st.sampled_from(PARTNERS), max_size=3, unique=True)):
            key = {"partner_id": partner_id, "partner_account_id": f"{partner_id}-{account_id}"}
            days = draw(maybe_days)
            world.partner_accounts.append(
                {
                    **key,
                    "account_id": account_id,
                    "relationship": draw(st.sampled_from(["customer", "opportunity", "prospect"])),
                    "partner_owner_email": draw(st.sampled_from([None, "kim@partner.example"])),
                    "last_activity_at": None if days is None else NOW - timedelta(days=days),
                    "relationship_strength": draw(st.sampled_from([None, 1, 3, 5])),
                    "contacts_engaged": draw(st.sampled_from([None, 0, 2, 8])),
                }
            )
            for days_ago in draw(st.lists(st.integers(1, 90), max_size=2, unique=True)):
                world.answers.append(
                    {
                        **key,
                        "answer": draw(st.sampled_from(["strong", "some", "none"])),
                        "answered_at": NOW - timedelta(days=days_ago),
                    }
                )
    return world


def latest_answers(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for a in sorted(world.answers, key=lambda a: a["answered_at"]):
        latest[(a["partner_id"], a["partner_account_id"])] = a
    return latest


def evidence_of(world: World) -> Evidence:
    """The evidence qualify would load from a store holding `world`."""
    latest = latest_answers(world)
    paths: dict[str, list[PartnerPath]] = {}
    for pa in world.partner_accounts:
        said = latest.get((pa["partner_id"], pa["partner_account_id"]), {})
        fields = {k: v for k, v in pa.items() if k != "account_id"}
        paths.setdefault(pa["account_id"], []).append(
            PartnerPath(**fields, answer=said.get("answer"), answered_at=said.get("answered_at"))
        )
    return Evidence(
        accounts={a["account_id"]: AccountFacts(**a) for a in world.accounts},
        paths=paths,
        reps={r["rep_id"]: RepFacts(**r) for r in world.reps},
        track_records=track_records((pid, a["answer"]) for (pid, _), a in latest.items()),
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_no_eql_on_a_cold_or_refused_path_a_failed_fit_rule_or_without_motion(
    world: World,
) -> None:
    config = world.config
    decisions = decide_leads(evidence_of(world), config, NOW)
    accounts = {a["account_id"]: a for a in world.accounts}
    latest = latest_answers(world)
    reps = {r["rep_id"]: r for r in world.reps}
    rules = icp_rules(config.icp)
    for account_id, lead in decisions.leads.items():
        assert (lead["status"] == "eql") == (lead["failed_gates"] == "")
        if lead["status"] == "warmth_requested":
            assert lead["failed_gates"] == "warmth"
        if lead["status"] != "eql":
            assert lead["owner_id"] is None and lead["due_at"] is None
            continue
        # The chosen partner path is warm: confirmed, or (without confirmation) warm enough.
        said = latest.get((lead["partner_id"], lead["partner_account_id"]), {}).get("answer")
        assert said != "none"
        if config.warmth.require_confirmation:
            assert said in POSITIVE_ANSWERS
        else:
            assert said in POSITIVE_ANSWERS or lead["warmth_score"] >= config.warmth.min_score
        # Every ICP rule passes, checked again from the raw account.
        assert fit_verdict(AccountFacts(**accounts[account_id]), rules).passed
        assert lead["fit_score"] == 100
        # A motion: an active owner, an action and a deadline.
        assert reps[lead["owner_id"]]["active"] is not False
        assert lead["action"] in ("partner_intro", "co_sell", "rep_outreach")
        assert lead["due_at"] > NOW
        # Our customers only when asked for.
        assert config.qualify.include_customers or not accounts[account_id]["is_customer"]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Store]:
    """One SQLite store for a module of generated worlds, emptied before each world."""
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/doorstep.db")
        yield store
        store.engine.dispose()


def store_with(world: World, store: Store) -> Workspace:
    """The store, emptied, then holding `world` as import and mapping would leave it."""
    extra = {"attributes": None, "row_hash": "-"}
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (Rep, [{**r, "name": r["rep_id"], "email": "r@example.com", **extra} for r in world.reps]),
        (Partner, [{"partner_id": p, "name": p, **extra} for p in PARTNERS]),
        (Account, [{**a, "name": a["account_id"], **extra} for a in world.accounts]),
        (
            PartnerAccount,
            [
                {**{k: v for k, v in pa.items() if k != "account_id"}, "name": "x", **extra}
                for pa in world.partner_accounts
            ],
        ),
        (Overlap, [
            {"account_id": a, "partner_id": p, "partner_account_id": x, "relationship": r,
             "method": "domain", "probability": 0.99, "evidence": None, "mapped_at": NOW}
            for a, p, x, r in world.overlaps()
        ]),
        (WarmthAnswer, [{**a, **extra} for a in world.answers]),
    ]  # fmt: skip
    with store.engine.begin() as conn:
        for model in (*(model for model, _ in rows), Lead, LeadEvent, WarmthRequest):
            conn.execute(delete(model))
        for model, values in rows:
            bulk_write(conn, table_of(model), values)
    return Workspace(Path("."), world.config, store)


def snapshot(store: Store) -> tuple[dict[str, dict[str, Any]], int, int]:
    with store.engine.connect() as conn:
        leads = {r["lead_id"]: dict(r) for r in conn.execute(select(Lead)).mappings()}
        events = conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one()
        requests = conn.execute(select(func.count()).select_from(WarmthRequest)).scalar_one()
    return leads, int(events), int(requests)


STORE_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@STORE_SETTINGS
@given(worlds())
def test_qualifying_twice_gives_the_same_leads_and_no_new_events(
    scratch: Store, world: World
) -> None:
    workspace = store_with(world, scratch)
    qualify_leads(workspace, now=NOW)
    first = snapshot(scratch)
    report = qualify_leads(workspace, now=NOW)
    assert snapshot(scratch) == first
    assert (report.created, report.changed, report.events, report.warmth_requests) == (0, 0, 0, 0)


def path_of(lead: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (lead["status"], lead["partner_id"], lead["partner_account_id"])


@STORE_SETTINGS
@given(
    worlds(capacities=st.none(), min_accounts=3),
    st.integers(0, 20),
    st.sampled_from(["strong", "some", "none"]),
)
def test_a_new_partner_answer_moves_exactly_the_affected_leads(
    scratch: Store, world: World, pick: int, said: str
) -> None:
    # Reps without a capacity limit: otherwise a lead that warms up may take the last slot of a
    # rep, and a lead elsewhere lose its owner, which is right but not this property.
    if not world.partner_accounts:
        return
    answered = world.partner_accounts[pick % len(world.partner_accounts)]
    partner_id, partner_account_id = answered["partner_id"], answered["partner_account_id"]
    workspace = store_with(world, scratch)
    qualify_leads(workspace, now=NOW)
    before, events_before, _ = snapshot(scratch)
    with scratch.engine.begin() as conn:
        bulk_write(
            conn,
            table_of(WarmthAnswer),
            [{"partner_id": partner_id, "partner_account_id": partner_account_id,
              "answer": said, "answered_at": NOW, "attributes": None, "row_hash": "-"}],
        )  # fmt: skip
    report = qualify_leads(workspace, now=NOW)
    after, events_after, _ = snapshot(scratch)

    sharing = {pa["account_id"] for pa in world.partner_accounts if pa["partner_id"] == partner_id}
    moved = {lid for lid in after if lid in before and path_of(after[lid]) != path_of(before[lid])}
    # One event per moved lead, and nothing else written to the log.
    assert events_after - events_before == report.events == len(moved)
    # Only leads this partner shares can move; the rest stay exactly as they were.
    for lead_id, lead in after.items():
        if lead["account_id"] not in sharing:
            assert lead == before[lead_id]
    assert {after[lid]["account_id"] for lid in moved} <= sharing
    # The lead whose chosen path was answered moves when the answer decides its warmth gate.
    answered_leads = [
        lid for lid, lead in before.items()
        if (lead["partner_id"], lead["partner_account_id"]) == (partner_id, partner_account_id)
    ]  # fmt: skip
    for lead_id in answered_leads:
        was = before[lead_id]
        if was["status"] == "eql" and said == "none":
            assert lead_id in moved
        if was["status"] == "warmth_requested" and said in POSITIVE_ANSWERS:
            assert after[lead_id]["status"] == "eql"
