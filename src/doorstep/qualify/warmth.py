"""The warmth score: how warm one partner's path into one of our accounts is, from 0 to 100.

The score is the sum of seven parts, each from one partner signal::

    part           max  formula
    relationship    30  the partner's relationship with the account:
                        customer 30, opportunity 20, prospect 8
    recency         20  20 * (1 - age / max_activity_age_days) for the whole days since the
                        partner's last activity; 0 beyond that age or when unknown
    named_owner     10  10 when the partner names an owner (partner_owner_email)
    contacts        10  10 * n / (n + 2) for n contacts engaged (1 -> 3.3, 2 -> 5, 6 -> 7.5):
                        more contacts help, with diminishing returns
    strength        15  15 * (s - 1) / 4 for relationship_strength s in 1..5; 0 when unknown
    shared           5  5 * (1 - 1 / k) for k partners sharing the account (1 -> 0, 2 -> 2.5,
                        4 -> 3.75): small and capped, so raw overlap count never buries fit
    track_record    10  10 * (positive + 2) / (outcomes + 4): the share of the partner's
                        answers that were positive (strong or some; its latest answer per
                        account) and of the intros we asked it for that it made (an intro
                        counts once settled: made, or the lead rejected for no contact),
                        shrunk toward 1/2 by a Beta(2, 2) prior, so a partner with no history
                        yet scores 5 rather than 0

Unknown signals earn nothing: warmth is evidence, and missing evidence is not warmth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

RELATIONSHIP_POINTS = {"customer": 30.0, "opportunity": 20.0, "prospect": 8.0}
RECENCY_POINTS = 20.0
NAMED_OWNER_POINTS = 10.0
CONTACTS_POINTS = 10.0
CONTACTS_HALF = 2  # contacts engaged that earn half of the contacts points
STRENGTH_POINTS = 15.0
SHARED_POINTS = 5.0
TRACK_RECORD_POINTS = 10.0
PRIOR_POSITIVE = 2.0  # Beta prior: as if every partner had given 2 positive and 2 negative answers
PRIOR_NEGATIVE = 2.0
POSITIVE_ANSWERS = frozenset({"strong", "some"})

PARTS = ("relationship", "recency", "named_owner", "contacts", "strength", "shared", "track_record")


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class PartnerPath:
    """One partner's way into one of our accounts: its account record and its latest answer."""

    partner_id: str
    partner_account_id: str
    relationship: str
    account_name: str | None = None
    partner_owner_email: str | None = None
    last_activity_at: datetime | None = None
    relationship_strength: int | None = None
    contacts_engaged: int | None = None
    answer: str | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """How a partner has done so far: positive answers and intros made, out of all answers and
    settled intro requests (`answers` counts both)."""

    positive: int = 0
    answers: int = 0

    @property
    def share(self) -> float:
        """The posterior mean share of positive answers under the Beta prior."""
        return (self.positive + PRIOR_POSITIVE) / (self.answers + PRIOR_POSITIVE + PRIOR_NEGATIVE)


NEW_PARTNER = TrackRecord()


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class WarmthScore:
    """A warmth score and the points each part contributed."""

    total: float
    parts: dict[str, float]


def track_records(
    answers: Iterable[tuple[str, str]], intros: Iterable[tuple[str, bool]] = ()
) -> dict[str, TrackRecord]:
    """Each partner's track record from (partner_id, answer) pairs, one pair per account, and
    (partner_id, made) pairs, one per settled intro request."""
    counts: dict[str, list[int]] = {}
    for partner_id, answer in answers:
        tally = counts.setdefault(partner_id, [0, 0])
        tally[0] += answer in POSITIVE_ANSWERS
        tally[1] += 1
    for partner_id, made in intros:
        tally = counts.setdefault(partner_id, [0, 0])
        tally[0] += made
        tally[1] += 1
    return {p: TrackRecord(positive, total) for p, (positive, total) in counts.items()}


def recency_points(
    last_activity_at: datetime | None, now: datetime, max_activity_age_days: int
) -> float:
    """Full points for activity today, falling linearly to zero at the maximum age.

    Age counts whole calendar days, so re-running on the same day gives the same score.
    """
    if last_activity_at is None:
        return 0.0
    age_days = max((now.date() - last_activity_at.date()).days, 0)
    return RECENCY_POINTS * max(0.0, 1.0 - age_days / max_activity_age_days)


# The parts below take few distinct values, so each is computed once per value.


@lru_cache(maxsize=1024)
def contacts_points(contacts_engaged: int | None) -> float:
    """More contacts engaged earn more, with diminishing returns."""
    n = max(contacts_engaged or 0, 0)
    return round(CONTACTS_POINTS * n / (n + CONTACTS_HALF), 2)


@lru_cache(maxsize=16)
def strength_points(relationship_strength: int | None) -> float:
    """Relationship strength 1 earns nothing, 5 earns all; unknown earns nothing."""
    if not relationship_strength:
        return 0.0
    return round(STRENGTH_POINTS * (min(max(relationship_strength, 1), 5) - 1) / 4, 2)


@lru_cache(maxsize=256)
def shared_points(partners_on_account: int) -> float:
    """A small bonus, capped, for each further partner that shares the account."""
    return round(SHARED_POINTS * (1 - 1 / max(partners_on_account, 1)), 2)


@lru_cache(maxsize=4096)
def track_record_points(track_record: TrackRecord) -> float:
    """The partner's shrunk share of positive answers, as points."""
    return round(TRACK_RECORD_POINTS * track_record.share, 2)


def warmth_score(
    path: PartnerPath,
    *,
    now: datetime,
    max_activity_age_days: int,
    partners_on_account: int = 1,
    track_record: TrackRecord | None = None,
) -> WarmthScore:
    """Score one partner path from 0 to 100; see the module docstring for the formula."""
    parts = {
        "relationship": RELATIONSHIP_POINTS.get(path.relationship, 0.0),
        "recency": round(recency_points(path.last_activity_at, now, max_activity_age_days), 2),
        "named_owner": NAMED_OWNER_POINTS if (path.partner_owner_email or "").strip() else 0.0,
        "contacts": contacts_points(path.contacts_engaged),
        "strength": strength_points(path.relationship_strength),
        "shared": shared_points(partners_on_account),
        "track_record": track_record_points(track_record or NEW_PARTNER),
    }
    # The total is the sum of the parts as shown, so the parts always add up to the score.
    return WarmthScore(round(sum(parts.values()), 1), parts)
