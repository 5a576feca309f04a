"""Routing: the pure rules that give an EQL an owner, an action and a deadline."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from doorstep.config import Config, RoutingRule, WarmthBands
from doorstep.qualify.fit import AccountFacts
from doorstep.qualify.motion import (
    MotionRules,
    PartnerFacts,
    RepFacts,
    assign_motions,
    choose_action,
    motion_rules,
    resolve_motion,
    routing_input,
    warmth_band,
)
from doorstep.qualify.warmth import PartnerPath

NOW = datetime(2026, 11, 24, 9, 0)

REPS = {
    "r1": RepFacts("r1", territory="EMEA", capacity=2, active=True),
    "r2": RepFacts("r2", territory="EMEA", capacity=3, active=True),
    "r3": RepFacts("r3", territory="NA", capacity=5, active=False),
    "pm": RepFacts("pm", territory=None, capacity=None, active=None),
}
DEFAULT = motion_rules(Config())


def rules(*specs: dict[str, Any]) -> MotionRules:
    """Motion rules with the default actions and SLA and the given routing rules."""
    config = Config.model_validate({"routing": {"rules": list(specs)}})
    return motion_rules(config)


def facts(**values: Any) -> dict[str, Any]:
    """The facts the routing rules see, built the one way the motion gate builds them."""
    account: dict[str, Any] = {"account_id": "a1", "owner_id": "r1", "territory": "EMEA",
                               "employees": 250}
    account.update({k: v for k, v in values.items() if k in ("owner_id", "territory",
                                                             "employees", "attributes")})
    path = PartnerPath("p1", "x1", values.get("relationship", "prospect"),
                       answer=values.get("answer"))
    return routing_input(
        AccountFacts(**account),
        path,
        {"p1": PartnerFacts("p1", "Cloudway", partner_manager_id="pm")},
        warmth_score=values.get("warmth_score", 60.0),
        fit_score=100.0,
    ).facts()


def test_the_account_owner_gets_the_lead_first() -> None:
    verdict = resolve_motion(facts(), REPS, DEFAULT, {}, now=NOW)
    assert (verdict.owner_id, verdict.rule) == ("r1", "account_owner")
    assert verdict.reason.startswith("rep outreach by account owner r1 (0 of 2 taken)")


def test_an_inactive_owner_falls_through_to_the_territory() -> None:
    verdict = resolve_motion(facts(owner_id="r3"), REPS, DEFAULT, {}, now=NOW)
    # r1 and r2 hold no leads yet; r2 has more room (3 against 2).
    assert (verdict.owner_id, verdict.rule) == ("r2", "territory_round_robin")


def test_a_full_owner_falls_through_to_the_rep_with_fewest_open_leads() -> None:
    verdict = resolve_motion(facts(), REPS, DEFAULT, {"r1": 2, "r2": 1}, now=NOW)
    assert (verdict.owner_id, verdict.rule) == ("r2", "territory_round_robin")
    assert "territory EMEA rep r2 (1 of 3 taken)" in verdict.reason


def test_round_robin_spreads_leads_over_the_territory_until_everyone_is_full() -> None:
    leads = [(facts(owner_id=None), None) for _ in range(7)]
    verdicts = assign_motions(leads, REPS, DEFAULT, {}, now=NOW)
    owners = [v.owner_id for v in verdicts]
    # Fewest open leads first, then most room: r1 holds 2, r2 holds 3.
    assert owners == ["r2", "r1", "r2", "r1", "r2", None, None]
    assert verdicts[-1].reason == (
        "no motion: no account owner; every active rep in territory EMEA is at capacity"
    )


def test_round_robin_keeps_the_previous_owner_on_a_rerun() -> None:
    verdict = resolve_motion(
        facts(owner_id=None), REPS, DEFAULT, {"r1": 1}, now=NOW, previous_owner_id="r1"
    )
    assert verdict.owner_id == "r1"


def test_nothing_resolves_means_no_motion_with_every_reason() -> None:
    verdict = resolve_motion(facts(owner_id="r3", territory="NA"), REPS, DEFAULT, {}, now=NOW)
    assert verdict.owner_id is None and verdict.due_at is None and not verdict.resolved
    assert verdict.reason == (
        "no motion: account owner r3 is inactive; territory NA has no active rep"
    )


def test_an_owner_who_is_not_a_rep_is_named_in_the_reason() -> None:
    verdict = resolve_motion(facts(owner_id="zz", territory=""), REPS, DEFAULT, {}, now=NOW)
    assert verdict.reason == (
        "no motion: account owner zz is not one of our reps; the account has no territory"
    )


def test_partner_manager_rule_applies_only_when_its_conditions_match() -> None:
    motion = rules(
        {"rule": "partner_manager", "when": {"warmth_band": "high", "relationship": "customer"}},
        {"rule": "account_owner"},
    )
    warm = resolve_motion(
        facts(warmth_score=80, relationship="customer"), REPS, motion, {}, now=NOW
    )
    assert (warm.owner_id, warm.rule) == ("pm", "partner_manager")
    lukewarm = resolve_motion(
        facts(warmth_score=60, relationship="customer"), REPS, motion, {}, now=NOW
    )
    assert (lukewarm.owner_id, lukewarm.rule) == ("r1", "account_owner")


def test_a_range_condition_and_its_reason() -> None:
    motion = rules({"rule": "account_owner", "when": {"employees": {"min": 1000}}})
    small = resolve_motion(facts(employees=250), REPS, motion, {}, now=NOW)
    assert small.reason == "no motion: account_owner does not apply (employees 250 below 1000)"
    large = resolve_motion(facts(employees="1200"), REPS, motion, {}, now=NOW)
    assert large.owner_id == "r1"


def test_conditions_on_an_extra_account_column_and_lists_of_values() -> None:
    motion = rules(
        {"rule": "partner_manager", "when": {"segment": ["enterprise", "strategic"]}},
        {"rule": "account_owner"},
    )
    strategic = facts(attributes={"segment": "Strategic"})
    assert resolve_motion(strategic, REPS, motion, {}, now=NOW).owner_id == "pm"
    unknown = resolve_motion(facts(), REPS, motion, {}, now=NOW)
    assert unknown.owner_id == "r1"


def test_a_queue_takes_what_no_rep_can_and_an_email_queue_has_no_limit() -> None:
    motion = rules(
        {"rule": "account_owner"},
        {"rule": "queue", "queue": "leads@example.com", "action": "rep_outreach"},
    )
    leads = [(facts(relationship="customer", answer="strong"), None) for _ in range(4)]
    verdicts = assign_motions(leads, REPS, motion, {}, now=NOW)
    assert [v.owner_id for v in verdicts] == ["r1", "r1", "leads@example.com", "leads@example.com"]
    assert [v.action for v in verdicts] == ["partner_intro"] * 2 + ["rep_outreach"] * 2


def test_a_queue_naming_an_inactive_rep_is_skipped() -> None:
    motion = rules({"rule": "queue", "queue": "r3"})
    verdict = resolve_motion(facts(), REPS, motion, {}, now=NOW)
    assert verdict.reason == "no motion: queue rep r3 is inactive"


def test_default_actions_follow_the_partner_relationship_and_answer() -> None:
    assert choose_action(facts(relationship="customer", answer="strong"), DEFAULT) == (
        "partner_intro"
    )
    assert choose_action(facts(relationship="customer", answer="some"), DEFAULT) == (
        "rep_outreach"
    )
    assert choose_action(facts(relationship="opportunity"), DEFAULT) == "co_sell"
    assert choose_action(facts(relationship="prospect"), DEFAULT) == "rep_outreach"


def test_the_deadline_is_the_actions_sla_from_now() -> None:
    intro = resolve_motion(facts(relationship="customer", answer="strong"), REPS, DEFAULT, {},
                           now=NOW)
    assert (intro.action, intro.due_at) == ("partner_intro", NOW + timedelta(days=3))
    co_sell = resolve_motion(facts(relationship="opportunity"), REPS, DEFAULT, {}, now=NOW)
    assert co_sell.due_at == NOW + timedelta(days=5)


def test_actions_and_sla_are_configurable() -> None:
    config = Config.model_validate(
        {
            "routing": {"actions": [{"action": "co_sell", "when": {"warmth_band": "high"}}],
                        "default_action": "partner_intro"},
            "qualify": {"sla_days": {"co_sell": 1}},
        }
    )
    motion = motion_rules(config)
    hot = resolve_motion(facts(warmth_score=90), REPS, motion, {}, now=NOW)
    assert (hot.action, hot.due_at) == ("co_sell", NOW + timedelta(days=1))
    assert resolve_motion(facts(), REPS, motion, {}, now=NOW).action == "partner_intro"


def test_warmth_bands() -> None:
    bands = WarmthBands(high=75, medium=50)
    assert [warmth_band(s, bands) for s in (None, 10, 50, 74.9, 75)] == [
        None, "low", "medium", "medium", "high",
    ]


def test_a_queue_rule_needs_a_queue() -> None:
    try:
        RoutingRule.model_validate({"rule": "queue"})
    except ValueError as exc:
        assert "needs queue" in str(exc)
    else:
        raise AssertionError("a queue rule without a queue was accepted")


rep_strategy = st.builds(
    RepFacts,
    rep_id=st.sampled_from(["r1", "r2", "r3", "r4"]),
    territory=st.sampled_from(["EMEA", "NA", None]),
    capacity=st.one_of(st.none(), st.integers(0, 4)),
    active=st.sampled_from([True, False, None]),
)


@given(
    reps=st.lists(rep_strategy, max_size=4, unique_by=lambda r: r.rep_id),
    owners=st.lists(st.sampled_from(["r1", "r2", "r3", "r4", None]), max_size=25),
    territory=st.sampled_from(["EMEA", "NA", ""]),
    load=st.dictionaries(st.sampled_from(["r1", "r2", "r3", "r4"]), st.integers(0, 3)),
)
def test_routing_never_overfills_a_rep_nor_picks_an_inactive_one(
    reps: list[RepFacts], owners: list[str | None], territory: str, load: dict[str, int]
) -> None:
    by_id = {r.rep_id: r for r in reps}
    leads = [(facts(owner_id=o, territory=territory), None) for o in owners]
    verdicts = assign_motions(leads, by_id, DEFAULT, load, now=NOW)
    taken = Counter(v.owner_id for v in verdicts if v.owner_id is not None)
    for rep_id, n in taken.items():
        rep = by_id[rep_id]
        assert rep.active is not False
        assert rep.capacity is None or load.get(rep_id, 0) + n <= rep.capacity
    for verdict in verdicts:
        assert (verdict.owner_id is None) == verdict.reason.startswith("no motion:")
        assert (verdict.owner_id is None) == (verdict.due_at is None)
