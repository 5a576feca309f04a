"""The four gates, one behaviour per test, on hand-made evidence (no store)."""

from __future__ import annotations

from datetime import datetime

import pytest

from doorstep.config import IcpConfig, IcpRange, WarmthConfig
from doorstep.qualify.fit import (
    AccountFacts,
    check_icp,
    fit_score,
    icp_rules,
    learn_fit,
    learned_rule,
)
from doorstep.qualify.gates import (
    GateResult,
    fit_verdict,
    lead_verdict,
    overlap_verdict,
    path_rank,
    warmth_verdict,
)
from doorstep.qualify.warmth import PartnerPath, WarmthScore

ANSWERED = datetime(2026, 10, 5, 9, 0)
CONFIRM = WarmthConfig(require_confirmation=True, min_score=50)
NO_CONFIRM = WarmthConfig(require_confirmation=False, min_score=50)


def account(**changes: object) -> AccountFacts:
    values: dict[str, object] = {
        "account_id": "a1",
        "name": "Northwind",
        "country": "DE",
        "industry": "software",
        "employees": 250,
        "annual_revenue": 3.5e7,
        "owner_id": "r1",
        "territory": "EMEA",
        "is_customer": False,
    }
    values.update(changes)
    return AccountFacts(**values)  # type: ignore[arg-type]


def path(
    relationship: str = "customer", answer: str | None = None, **changes: object
) -> PartnerPath:
    values: dict[str, object] = {
        "partner_id": "p1",
        "partner_account_id": "x1",
        "relationship": relationship,
        "answer": answer,
        "answered_at": ANSWERED if answer else None,
    }
    values.update(changes)
    return PartnerPath(**values)  # type: ignore[arg-type]


def scored(total: float) -> WarmthScore:
    return WarmthScore(total, {"relationship": total})


# --- overlap ------------------------------------------------------------------------------


def test_overlap_passes_when_a_partner_shares_the_account() -> None:
    result = overlap_verdict(account(), [path(), path(partner_id="p2")], include_customers=False)
    assert result.passed
    assert result.reason == "shared with 2 partners: p1, p2"
    assert result.detail["partners"] == ["p1", "p2"]


def test_overlap_fails_when_no_partner_shares_the_account_any_more() -> None:
    result = overlap_verdict(account(), [], include_customers=False)
    assert not result.passed and "no partner shares" in result.reason


def test_overlap_fails_without_a_customer_opportunity_or_prospect_relationship() -> None:
    result = overlap_verdict(account(), [path(relationship="vendor")], include_customers=False)
    assert not result.passed and "found: vendor" in result.reason


def test_our_customer_fails_overlap_unless_customers_are_included() -> None:
    customer = account(is_customer=True)
    excluded = overlap_verdict(customer, [path()], include_customers=False)
    assert not excluded.passed and "already our customer" in excluded.reason
    assert overlap_verdict(customer, [path()], include_customers=True).passed


# --- warmth -------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["strong", "some"])
def test_confirmed_warmth_passes_on_strong_or_some(answer: str) -> None:
    result = warmth_verdict(path(answer=answer), scored(10), CONFIRM)
    assert result.passed
    assert result.reason == f"partner p1 answered '{answer}' on 2026-10-05"


def test_an_answer_of_none_fails_and_names_the_partner_and_date() -> None:
    result = warmth_verdict(path(answer="none"), scored(95), CONFIRM)
    assert not result.passed
    assert result.reason == "partner p1 answered 'none' on 2026-10-05"


def test_refusal_fails_even_when_confirmation_is_not_required() -> None:
    assert not warmth_verdict(path(answer="none"), scored(95), NO_CONFIRM).passed


def test_no_answer_yet_with_a_high_score_waits_for_the_partner() -> None:
    result = warmth_verdict(path(), scored(72), CONFIRM)
    assert not result.passed
    assert result.detail["awaiting"] is True
    assert "waiting for partner p1" in result.reason


def test_no_answer_and_a_low_score_is_too_cold_to_ask() -> None:
    result = warmth_verdict(path(), scored(31.5), CONFIRM)
    assert not result.passed and result.detail["awaiting"] is False
    assert result.reason == "warmth 31.5 with partner p1 is below 50; too cold to ask"


def test_without_confirmation_the_minimum_score_decides() -> None:
    assert warmth_verdict(path(), scored(50), NO_CONFIRM).passed
    below = warmth_verdict(path(), scored(49.9), NO_CONFIRM)
    assert not below.passed and below.detail["awaiting"] is False


def test_warmth_records_the_score_and_its_parts() -> None:
    result = warmth_verdict(path(answer="strong"), scored(64), CONFIRM)
    assert result.detail["score"] == 64
    assert result.detail["parts"] == {"relationship": 64}
    assert result.detail["answered_at"] == "2026-10-05T09:00:00"


def test_no_partner_path_fails_warmth() -> None:
    assert not warmth_verdict(None, None, CONFIRM).passed


def test_paths_rank_passing_then_waiting_then_cold_and_strong_before_some() -> None:
    paths = {
        "cold": (path(partner_id="p1"), 20),
        "waiting": (path(partner_id="p2"), 90),
        "some": (path("customer", "some", partner_id="p3"), 99),
        "strong": (path("customer", "strong", partner_id="p4"), 40),
        "refused": (path("customer", "none", partner_id="p5"), 95),
    }
    order = sorted(paths, key=lambda k: path_rank(*paths[k], CONFIRM))
    assert order == ["strong", "some", "waiting", "refused", "cold"]


def test_without_confirmation_a_warm_unanswered_path_ranks_with_the_passing_ones() -> None:
    unanswered, refused = (path(partner_id="p1"), 70.0), (path("customer", "none"), 95.0)
    assert path_rank(*unanswered, NO_CONFIRM) < path_rank(*refused, NO_CONFIRM)
    assert path_rank(*unanswered, NO_CONFIRM)[0] == 0


def test_equal_paths_rank_by_partner_id_so_the_choice_is_stable() -> None:
    a, b = path(partner_id="p2"), path(partner_id="p1")
    assert sorted([a, b], key=lambda p: path_rank(p, 60, CONFIRM))[0].partner_id == "p1"


# --- fit ----------------------------------------------------------------------------------


def test_fit_names_the_failed_industry_rule_with_the_allowed_values() -> None:
    rules = icp_rules(IcpConfig(industries=["software", "fintech"]))
    result = fit_verdict(account(industry="retail"), rules)
    assert not result.passed
    assert result.reason == "industry 'retail' not in ICP (software, fintech)"


def test_industry_compares_without_case() -> None:
    rules = icp_rules(IcpConfig(industries=["Software"]))
    assert fit_verdict(account(industry="SOFTWARE"), rules).passed


def test_countries_compare_as_iso_codes() -> None:
    rules = icp_rules(IcpConfig(countries=["DE", "gb"]))
    assert fit_verdict(account(country="Germany"), rules).passed
    assert fit_verdict(account(country="United Kingdom"), rules).passed
    result = fit_verdict(account(country="France"), rules)
    assert result.reason == "country 'France' (FR) not in ICP (DE, gb)"


def test_employees_outside_the_range_fail_with_the_bound() -> None:
    rules = icp_rules(IcpConfig(employees_min=50, employees_max=5000))
    assert fit_verdict(account(employees=20), rules).reason == "employees 20 below ICP minimum 50"
    high = fit_verdict(account(employees=9000), rules)
    assert high.reason == "employees 9,000 above ICP maximum 5,000"


def test_missing_value_fails_only_the_rule_that_needs_it() -> None:
    ranged = icp_rules(IcpConfig(employees_min=50, employees_max=None))
    result = fit_verdict(account(employees=None), ranged)
    assert not result.passed and result.reason == "employees unknown"
    unranged = icp_rules(IcpConfig(employees_min=None, employees_max=None, industries=["software"]))
    assert fit_verdict(account(employees=None), unranged).passed


def test_revenue_range_is_a_rule_when_set() -> None:
    rules = icp_rules(IcpConfig(employees_min=None, employees_max=None, revenue_min=5e7))
    result = fit_verdict(account(annual_revenue=3.5e7), rules)
    assert result.reason == "annual revenue 35,000,000 below ICP minimum 50,000,000"


def test_extra_list_rule_reads_an_attribute() -> None:
    icp = IcpConfig(employees_min=None, employees_max=None, extra={"segment": ["enterprise"]})
    rules = icp_rules(icp)
    assert fit_verdict(account(attributes={"segment": "Enterprise"}), rules).passed
    result = fit_verdict(account(attributes={"segment": "smb"}), rules)
    assert result.reason == "segment 'smb' not in ICP (enterprise)"
    assert fit_verdict(account(attributes=None), rules).reason == "segment unknown"


def test_extra_range_rule_reads_a_column_or_an_attribute() -> None:
    icp = IcpConfig(
        employees_min=None,
        employees_max=None,
        extra={"seats": IcpRange(min=20), "employees": IcpRange(max=100)},
    )
    rules = icp_rules(icp)
    result = fit_verdict(account(employees=250, attributes={"seats": "5"}), rules)
    assert result.reason == "employees 250 above ICP maximum 100; seats 5 below ICP minimum 20"
    assert fit_verdict(account(employees=80, attributes={"seats": "40"}), rules).passed
    assert "is not a number" in fit_verdict(account(attributes={"seats": "lots"}), rules).reason


def test_every_failed_rule_is_named_and_fit_score_is_the_share_passed() -> None:
    icp = IcpConfig(industries=["software"], countries=["US"], employees_min=50)
    result = fit_verdict(account(industry="retail", country="DE", employees=250), icp_rules(icp))
    assert result.reason.count(";") == 1
    assert "industry 'retail'" in result.reason and "country 'DE'" in result.reason
    assert result.detail["fit_score"] == pytest.approx(33.3)
    assert [r["passed"] for r in result.detail["rules"]] == [False, False, True]


def test_no_icp_rules_means_every_account_fits() -> None:
    rules = icp_rules(IcpConfig(employees_min=None, employees_max=None))
    result = fit_verdict(account(industry=None, employees=None), rules)
    assert result.passed and result.detail["fit_score"] == 100
    assert fit_score(check_icp(account(), rules)) == 100


# --- the lead's verdict -------------------------------------------------------------------


def gate(name: str, passed: bool, **detail: object) -> GateResult:
    return GateResult(name, passed, f"{name} {'ok' if passed else 'failed'}", dict(detail))


def test_all_four_passing_make_an_eql() -> None:
    verdict = lead_verdict([gate(g, True) for g in ("overlap", "warmth", "fit", "motion")])
    assert (verdict.status, verdict.failed_gates, verdict.reason) == (
        "eql",
        "",
        "all four gates passed",
    )


def test_only_waiting_for_the_partner_is_warmth_requested() -> None:
    gates = [gate("overlap", True), gate("warmth", False, awaiting=True), gate("fit", True),
             gate("motion", True)]  # fmt: skip
    assert lead_verdict(gates).status == "warmth_requested"


def test_waiting_for_the_partner_with_another_failure_is_a_candidate() -> None:
    gates = [gate("overlap", True), gate("warmth", False, awaiting=True), gate("fit", False),
             gate("motion", True)]  # fmt: skip
    verdict = lead_verdict(gates)
    assert verdict.status == "candidate"
    assert verdict.failed_gates == "warmth;fit"
    assert verdict.reason == "warmth: warmth failed; fit: fit failed"  # every gate it failed


def test_a_cold_overlap_is_a_candidate_with_the_warmth_reason() -> None:
    gates = [gate("overlap", True), gate("warmth", False), gate("fit", True), gate("motion", True)]
    verdict = lead_verdict(gates)
    assert (verdict.status, verdict.failed_gates) == ("candidate", "warmth")


# --- learned fit --------------------------------------------------------------------------


def history() -> tuple[list[AccountFacts], list[bool]]:
    """Software accounts we mostly won, retail accounts we mostly lost."""
    accounts, won = [], []
    for i in range(40):
        software = i % 2 == 0
        accounts.append(account(account_id=f"h{i}", industry="software" if software else "retail",
                                employees=100 + 37 * i))  # fmt: skip
        won.append(software if i % 10 else not software)
    return accounts, won


def test_learned_fit_scores_accounts_like_the_ones_we_won_higher() -> None:
    pytest.importorskip("sklearn")
    model, note = learn_fit(*history(), min_history=30)
    assert model is not None and note == "learned fit trained on 40 accounts"
    p = model.probabilities([account(account_id="s", industry="software"),
                             account(account_id="r", industry="retail")])  # fmt: skip
    assert p["s"] > 0.5 > p["r"]


def test_learned_fit_needs_enough_history_with_wins_and_losses() -> None:
    accounts, won = history()
    model, note = learn_fit(accounts[:10], won[:10], min_history=30)
    assert model is None and "10 accounts with a closed opportunity" in note
    model, note = learn_fit(accounts, [True] * len(accounts), min_history=30)
    assert model is None and "(40 won)" in note


def test_the_learned_rule_fails_a_low_probability_and_never_passes_a_failed_rule() -> None:
    rules = [*icp_rules(IcpConfig(industries=["software"])), learned_rule(0.3, {"a1": 0.9})]
    retail = fit_verdict(account(industry="retail"), rules)
    assert not retail.passed  # a high learned probability does not pass a failed rule
    assert retail.reason == "industry 'retail' not in ICP (software)"
    low = fit_verdict(account(), [*rules[:-1], learned_rule(0.3, {"a1": 0.12})])
    assert low.reason == "learned win probability 0.12 below ICP minimum 0.30"
    assert fit_verdict(account(account_id="a9"), rules).reason == "learned win probability unknown"
    assert fit_verdict(account(), rules).passed


def test_values_equal_in_python_but_of_different_types_are_judged_apart() -> None:
    icp = IcpConfig(employees_min=None, employees_max=None, extra={"flag": ["1"]})
    rules = icp_rules(icp)
    assert not fit_verdict(account(attributes={"flag": True}), rules).passed  # "true" is not "1"
    assert fit_verdict(account(attributes={"flag": 1}), rules).passed
