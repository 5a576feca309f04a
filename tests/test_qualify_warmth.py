"""The warmth score: each part on its own, and how the parts add up."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from doorstep.qualify.warmth import (
    PARTS,
    PartnerPath,
    TrackRecord,
    contacts_points,
    recency_points,
    shared_points,
    strength_points,
    track_record_points,
    track_records,
    warmth_score,
)

NOW = datetime(2026, 11, 1)


def path(**changes: object) -> PartnerPath:
    """A lukewarm prospect path with no signals, changed as given."""
    values: dict[str, object] = {
        "partner_id": "p1",
        "partner_account_id": "x1",
        "relationship": "prospect",
    }
    values.update(changes)
    return PartnerPath(**values)  # type: ignore[arg-type]


def score(p: PartnerPath, **kwargs: object) -> float:
    return warmth_score(p, now=NOW, max_activity_age_days=180, **kwargs).total  # type: ignore[arg-type]


def test_relationship_ranks_customer_over_opportunity_over_prospect() -> None:
    customer = score(path(relationship="customer"))
    opportunity = score(path(relationship="opportunity"))
    prospect = score(path(relationship="prospect"))
    assert customer > opportunity > prospect


def test_recency_is_full_today_half_at_half_age_and_zero_beyond_max_age() -> None:
    assert recency_points(NOW, NOW, 180) == 20
    assert recency_points(NOW - timedelta(days=90), NOW, 180) == pytest.approx(10)
    assert recency_points(NOW - timedelta(days=180), NOW, 180) == 0
    assert recency_points(NOW - timedelta(days=400), NOW, 180) == 0
    assert recency_points(None, NOW, 180) == 0


def test_activity_in_the_future_counts_as_today() -> None:
    assert recency_points(NOW + timedelta(days=3), NOW, 180) == 20


def test_recency_counts_whole_days_so_a_later_run_that_day_scores_the_same() -> None:
    last = NOW - timedelta(days=30)
    assert recency_points(last, NOW, 180) == recency_points(last, NOW + timedelta(hours=23), 180)
    assert recency_points(last, NOW + timedelta(days=1), 180) < recency_points(last, NOW, 180)


def test_max_activity_age_sets_where_recency_reaches_zero() -> None:
    last = path(last_activity_at=NOW - timedelta(days=100))
    short = warmth_score(last, now=NOW, max_activity_age_days=90)
    long = warmth_score(last, now=NOW, max_activity_age_days=365)
    assert short.parts["recency"] == 0
    assert long.parts["recency"] > 0


def test_a_named_partner_owner_adds_ten_points() -> None:
    named = warmth_score(
        path(partner_owner_email="kim@partner.example"), now=NOW, max_activity_age_days=180
    )
    unnamed = warmth_score(path(), now=NOW, max_activity_age_days=180)
    assert named.parts["named_owner"] == 10
    assert unnamed.parts["named_owner"] == 0
    assert named.total - unnamed.total == pytest.approx(10)


def test_contacts_engaged_help_with_diminishing_returns_and_never_exceed_ten() -> None:
    points = [contacts_points(n) for n in range(0, 20)]
    assert points[0] == 0 and points[2] == 5
    assert all(a < b for a, b in zip(points, points[1:], strict=False))
    gains = [b - a for a, b in zip(points, points[1:], strict=False)]
    assert all(later <= earlier for earlier, later in zip(gains, gains[1:], strict=False))
    assert max(points) < contacts_points(1000) <= 10
    assert contacts_points(None) == 0


def test_relationship_strength_one_earns_nothing_and_five_earns_fifteen() -> None:
    assert strength_points(1) == 0
    assert strength_points(3) == 7.5
    assert strength_points(5) == 15
    assert strength_points(None) == 0


def test_partner_count_bonus_is_small_and_capped() -> None:
    assert shared_points(1) == 0
    assert shared_points(2) == 2.5
    assert shared_points(3) < shared_points(4) <= shared_points(1000) <= 5


def test_many_partners_do_not_outrank_one_warm_partner() -> None:
    crowded = path(relationship="prospect")
    warm = path(
        relationship="customer",
        last_activity_at=NOW - timedelta(days=10),
        relationship_strength=4,
    )
    assert score(warm, partners_on_account=1) > score(crowded, partners_on_account=50)


def test_a_new_partner_gets_the_prior_not_zero() -> None:
    assert track_record_points(TrackRecord()) == 5


def test_track_record_is_shrunk_toward_the_prior() -> None:
    one_yes = track_record_points(TrackRecord(positive=1, answers=1))
    many_yes = track_record_points(TrackRecord(positive=40, answers=40))
    many_no = track_record_points(TrackRecord(positive=0, answers=40))
    assert 5 < one_yes < many_yes < 10
    assert 0 < many_no < 1


def test_track_records_count_strong_and_some_as_positive() -> None:
    records = track_records([("p1", "strong"), ("p1", "some"), ("p1", "none"), ("p2", "none")])
    assert records["p1"] == TrackRecord(positive=2, answers=3)
    assert records["p2"] == TrackRecord(positive=0, answers=1)


def test_intros_made_and_missed_count_in_the_track_record() -> None:
    records = track_records([("p1", "strong")], [("p1", True), ("p1", True), ("p2", False)])
    assert records["p1"] == TrackRecord(positive=3, answers=3)
    assert records["p2"] == TrackRecord(positive=0, answers=1)
    assert track_record_points(records["p1"]) > track_record_points(records["p2"])


def test_every_part_is_reported_and_they_add_up_to_the_score() -> None:
    result = warmth_score(
        path(
            relationship="opportunity",
            last_activity_at=NOW - timedelta(days=45),
            partner_owner_email="kim@partner.example",
            relationship_strength=3,
            contacts_engaged=4,
        ),
        now=NOW,
        max_activity_age_days=180,
        partners_on_account=3,
        track_record=TrackRecord(2, 3),
    )
    assert tuple(result.parts) == PARTS
    assert result.total == pytest.approx(sum(result.parts.values()), abs=0.05)
    assert result.parts["relationship"] == 20


def test_all_signals_at_their_best_score_close_to_one_hundred() -> None:
    best = warmth_score(
        path(
            relationship="customer",
            last_activity_at=NOW,
            partner_owner_email="kim@partner.example",
            relationship_strength=5,
            contacts_engaged=10_000,
        ),
        now=NOW,
        max_activity_age_days=180,
        partners_on_account=10_000,
        track_record=TrackRecord(10_000, 10_000),
    )
    worst = warmth_score(path(relationship="prospect"), now=NOW, max_activity_age_days=180,
                         track_record=TrackRecord(0, 10_000))  # fmt: skip
    assert 99 <= best.total <= 100
    assert worst.total == pytest.approx(8, abs=0.1)  # the prospect points alone
