"""Which opportunity belongs to which lead: the window, named opportunities, one per type,
open, influenced and account-less leads; and the holdout draw."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from doorstep.measure.attribution import (
    INFLUENCED,
    MEASURED,
    NO_ACCOUNT,
    OPEN,
    is_holdout,
    lead_outcomes,
)

NOW = datetime(2026, 6, 1)
OLD = NOW - timedelta(days=200)  # a lead whose 90-day window has long closed


def leads(*rows: tuple[str, str, str | None, datetime]) -> pa.Table:
    """Leads as (lead_id, lead_type, account_id, created_at); the key is the lead id."""
    return pa.table(
        {
            "lead_key": [r[0] for r in rows],
            "lead_id": [r[0] for r in rows],
            "lead_type": [r[1] for r in rows],
            "account_id": pa.array([r[2] for r in rows], pa.string()),
            "created_at": pa.array([r[3] for r in rows], pa.timestamp("us")),
        }
    )


def opportunities(*rows: dict[str, Any]) -> pa.Table:
    """Opportunities from dicts with opportunity_id, account_id, created_at and optional rest."""
    names = ("opportunity_id", "account_id", "created_at", "amount", "closed_at", "is_won",
             "lead_id")
    types = (pa.string(), pa.string(), pa.timestamp("us"), pa.float64(), pa.timestamp("us"),
             pa.bool_(), pa.string())
    return pa.table(
        {n: pa.array([r.get(n) for r in rows], t) for n, t in zip(names, types, strict=True)}
    )


def outcome(
    lead_rows: pa.Table, opp_rows: pa.Table, window_days: int = 90
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[dict[str, Any]]]:
    """Outcomes by (lead_id, lead_type), and the attributions as dicts."""
    table, attributions = lead_outcomes(lead_rows, opp_rows, window_days=window_days, now=NOW)
    rows = {(r["lead_id"], r["lead_type"]): r for r in table.to_pylist()}
    return rows, attributions.to_pylist()


def test_an_opportunity_on_the_account_within_the_window_converts_the_lead() -> None:
    result, attributed = outcome(
        leads(("L1", "mql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=30),
             "amount": 5000.0, "is_won": True, "closed_at": OLD + timedelta(days=60)}
        ),
    )
    lead = result[("L1", "mql")]
    assert lead["state"] == MEASURED
    assert lead["converted"] and lead["won"] and lead["decided"]
    assert lead["days_to_opportunity"] == pytest.approx(30)
    assert lead["pipeline"] == 5000
    assert attributed == [
        {"opportunity_id": "O1", "lead_key": "L1", "lead_type": "mql", "how": "account"}
    ]


@pytest.mark.parametrize("days", [-1, 91])
def test_an_opportunity_before_the_lead_or_after_the_window_does_not_count(days: int) -> None:
    result, attributed = outcome(
        leads(("L1", "mql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=days),
             "closed_at": OLD + timedelta(days=days, hours=1), "is_won": False}
        ),
    )
    assert result[("L1", "mql")]["state"] == MEASURED
    assert not result[("L1", "mql")]["converted"]
    assert result[("L1", "mql")]["days_to_opportunity"] is None
    assert attributed == []


def test_the_window_is_configurable() -> None:
    rows = (
        leads(("L1", "mql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=45)}
        ),
    )
    assert outcome(*rows, window_days=60)[0][("L1", "mql")]["converted"]
    assert not outcome(*rows, window_days=30)[0][("L1", "mql")]["converted"]


def test_an_opportunity_naming_the_lead_always_counts_even_after_the_window() -> None:
    result, attributed = outcome(
        leads(("L1", "eql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A9", "created_at": OLD + timedelta(days=150),
             "lead_id": "L1"}
        ),
    )
    assert result[("L1", "eql")]["converted"]
    assert attributed[0]["how"] == "named"


def test_a_named_opportunity_belongs_to_its_lead_alone() -> None:
    result, attributed = outcome(
        leads(("L1", "eql", "A1", OLD), ("L2", "mql", "A1", OLD - timedelta(days=5))),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=20),
             "lead_id": "L1"}
        ),
    )
    assert result[("L1", "eql")]["converted"]
    assert not result[("L2", "mql")]["converted"]
    assert len(attributed) == 1


def test_an_opportunity_naming_an_unknown_lead_is_attributed_by_account() -> None:
    result, attributed = outcome(
        leads(("L1", "mql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=3),
             "lead_id": "L-gone"}
        ),
    )
    assert result[("L1", "mql")]["converted"]
    assert attributed[0]["how"] == "account"


def test_two_leads_of_one_type_share_an_opportunity_once_the_latest_gets_it() -> None:
    result, attributed = outcome(
        leads(
            ("L1", "mql", "A1", OLD),
            ("L2", "mql", "A1", OLD + timedelta(days=10)),
            ("L3", "eql", "A1", OLD + timedelta(days=2)),
        ),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=20)}
        ),
    )
    assert not result[("L1", "mql")]["converted"]
    assert result[("L2", "mql")]["converted"]
    # another lead type on the same account may claim the same opportunity once
    assert result[("L3", "eql")]["converted"]
    assert sorted((a["lead_type"], a["lead_key"]) for a in attributed) == [
        ("eql", "L3"), ("mql", "L2")
    ]


def test_a_lead_counted_under_two_types_converts_under_both() -> None:
    lead_rows = leads(("L1", "candidate", "A1", OLD), ("L1", "candidate:fit", "A1", OLD))
    result, _ = outcome(
        lead_rows,
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=9)}
        ),
    )
    assert result[("L1", "candidate")]["converted"]
    assert result[("L1", "candidate:fit")]["converted"]


def test_a_young_lead_is_open_with_or_without_an_opportunity() -> None:
    young = NOW - timedelta(days=30)
    result, _ = outcome(
        leads(("L1", "mql", "A1", young), ("L2", "mql", "A2", young)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": young + timedelta(days=7)}
        ),
    )
    assert result[("L1", "mql")]["state"] == OPEN
    assert result[("L1", "mql")]["converted"]  # kept for Kaplan-Meier, not in the rate
    assert result[("L2", "mql")]["state"] == OPEN
    assert not result[("L2", "mql")]["converted"]
    assert result[("L2", "mql")]["age_days"] == pytest.approx(30)


def test_a_lead_exactly_one_window_old_is_measured() -> None:
    result, _ = outcome(leads(("L1", "mql", "A1", NOW - timedelta(days=90))), opportunities())
    assert result[("L1", "mql")]["state"] == MEASURED


def test_a_lead_without_an_account_is_left_out_even_with_a_named_opportunity() -> None:
    result, _ = outcome(
        leads(("L1", "mql", None, OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=3),
             "lead_id": "L1"}
        ),
    )
    assert result[("L1", "mql")]["state"] == NO_ACCOUNT


def test_a_lead_on_an_account_already_in_open_pipeline_is_influenced_not_sourced() -> None:
    result, _ = outcome(
        leads(("L1", "eql", "A1", OLD), ("L2", "eql", "A2", OLD), ("L3", "eql", "A3", OLD)),
        opportunities(
            # still open when L1 was created
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD - timedelta(days=40)},
            # closed before L2 was created
            {"opportunity_id": "O2", "account_id": "A2", "created_at": OLD - timedelta(days=40),
             "closed_at": OLD - timedelta(days=10), "is_won": False},
            # closed after L3 was created
            {"opportunity_id": "O3", "account_id": "A3", "created_at": OLD - timedelta(days=40),
             "closed_at": OLD + timedelta(days=10), "is_won": True},
        ),
    )
    assert result[("L1", "eql")]["state"] == INFLUENCED
    assert result[("L2", "eql")]["state"] == MEASURED
    assert result[("L3", "eql")]["state"] == INFLUENCED


def test_first_opportunity_sets_days_and_every_attributed_one_adds_pipeline() -> None:
    result, _ = outcome(
        leads(("L1", "sql", "A1", OLD)),
        opportunities(
            {"opportunity_id": "O1", "account_id": "A1", "created_at": OLD + timedelta(days=50),
             "amount": 100.0},
            {"opportunity_id": "O2", "account_id": "A1", "created_at": OLD + timedelta(days=12),
             "amount": 250.0, "is_won": False, "closed_at": OLD + timedelta(days=40)},
        ),
    )
    lead = result[("L1", "sql")]
    assert lead["opportunities"] == 2
    assert lead["days_to_opportunity"] == pytest.approx(12)
    assert lead["pipeline"] == 350
    assert lead["decided"] and not lead["won"]


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        lead_outcomes(leads(), opportunities(), window_days=0, now=NOW)


# --- holdout -------------------------------------------------------------------------------


def test_holdout_draw_is_stable_and_close_to_the_share() -> None:
    ids = [f"L-A{i:06d}" for i in range(20_000)]
    held = [i for i in ids if is_holdout(i, 0.1)]
    assert held == [i for i in ids if is_holdout(i, 0.1)]
    assert 0.09 < len(held) / len(ids) < 0.11


def test_a_larger_holdout_keeps_everyone_a_smaller_one_held_out() -> None:
    ids = [f"lead-{i}" for i in range(5000)]
    small = {i for i in ids if is_holdout(i, 0.05)}
    large = {i for i in ids if is_holdout(i, 0.2)}
    assert small and small < large


def test_no_holdout_share_holds_nobody_out() -> None:
    assert not any(is_holdout(f"lead-{i}", 0.0) for i in range(1000))
    assert all(is_holdout(f"lead-{i}", 1.0) for i in range(10))
