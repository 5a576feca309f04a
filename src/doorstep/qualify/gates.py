"""The four gates, each a pure function from evidence to a verdict with a reason.

overlap -> warmth -> fit -> motion: a lead is an EQL only when all four pass. Nothing one gate
finds can turn another gate's failure into a pass.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorstep.config import SlaDaysConfig, WarmthConfig
from doorstep.ingest.contract import RELATIONSHIPS
from doorstep.qualify.fit import AccountFacts, IcpRule, check_icp, fit_score
from doorstep.qualify.warmth import POSITIVE_ANSWERS, PartnerPath, WarmthScore

GATES = ("overlap", "warmth", "fit", "motion")
ALL_PASSED = "all four gates passed"

EQL = "eql"
WARMTH_REQUESTED = "warmth_requested"
CANDIDATE = "candidate"

PARTNER_INTRO = "partner_intro"
CO_SELL = "co_sell"
REP_OUTREACH = "rep_outreach"

_ANSWER_RANK = {"strong": 2, "some": 1}


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class GateResult:
    """One gate's verdict on one lead: passed or not, why, and the evidence it used."""

    gate: str
    passed: bool
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The verdict as stored in a lead's `gates` column."""
        return {"passed": self.passed, "reason": self.reason, **self.detail}


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class LeadVerdict:
    """What the four verdicts make of a lead: its status, the failed gates and the reason."""

    status: str
    failed_gates: str
    reason: str


@dataclass(frozen=True, slots=True)
class RepFacts:
    """A rep who can own leads; a missing `active` means active, a missing capacity no limit."""

    rep_id: str
    territory: str | None = None
    capacity: int | None = None
    active: bool | None = None

    @property
    def is_active(self) -> bool:
        return self.active is not False


@dataclass(frozen=True)
class Roster:
    """Our reps by id, and the active ones by territory (compared case-insensitively)."""

    by_id: Mapping[str, RepFacts]
    active_by_territory: Mapping[str, tuple[RepFacts, ...]]

    @classmethod
    def of(cls, reps: Iterable[RepFacts]) -> Roster:
        """Index `reps` once, so resolving owners for many leads does not rescan them."""
        by_id = {r.rep_id: r for r in reps}
        territories: dict[str, list[RepFacts]] = {}
        for rep in sorted(by_id.values(), key=lambda r: r.rep_id):
            if rep.is_active and (rep.territory or "").strip():
                territories.setdefault(_territory_key(rep.territory), []).append(rep)
        return cls(by_id, {t: tuple(reps) for t, reps in territories.items()})


class RepLoads:
    """How many leads each rep carries, with each territory's lightest rep with room at hand.

    Counts only go up during a run, so a heap per territory with stale entries skipped finds
    the lightest rep in O(log n) instead of rescanning the territory for every lead.
    """

    def __init__(self, roster: Roster, assigned: Mapping[str, int] | None = None) -> None:
        self.roster = roster
        self.counts: dict[str, int] = dict(assigned or {})
        self._heaps: dict[str, list[tuple[int, str]]] = {}
        for territory, reps in roster.active_by_territory.items():
            heap = [(self.counts.get(r.rep_id, 0), r.rep_id) for r in reps]
            heapq.heapify(heap)
            self._heaps[territory] = heap

    def load(self, rep_id: str) -> int:
        """Leads the rep carries now."""
        return self.counts.get(rep_id, 0)

    def has_room(self, rep: RepFacts) -> bool:
        """Whether the rep can take one more lead."""
        return rep.capacity is None or self.load(rep.rep_id) < rep.capacity

    def assign(self, rep_id: str) -> None:
        """Count one more lead for the rep."""
        self.counts[rep_id] = self.load(rep_id) + 1
        rep = self.roster.by_id.get(rep_id)
        heap = self._heaps.get(_territory_key(rep.territory)) if rep and rep.is_active else None
        if heap is not None:
            heapq.heappush(heap, (self.counts[rep_id], rep_id))

    def lightest(self, territory: str) -> RepFacts | None:
        """The territory's active rep with room and the fewest leads, then the lowest rep_id."""
        heap = self._heaps.get(_territory_key(territory), [])
        while heap:
            load, rep_id = heap[0]
            rep = self.roster.by_id[rep_id]
            if load == self.load(rep_id) and self.has_room(rep):
                return rep
            heapq.heappop(heap)  # stale count, or full for the rest of the run
        return None


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class OwnerResolution:
    """Who owns a lead and how that was decided; `owner_id` is None when nobody can."""

    owner_id: str | None
    how: str
    reason: str


def _territory_key(territory: str | None) -> str:
    return (territory or "").strip().casefold()


def _points(value: float) -> str:
    return f"{value:g}"


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value else "an unknown date"


def overlap_verdict(
    account: AccountFacts, paths: Sequence[PartnerPath], *, include_customers: bool
) -> GateResult:
    """Pass when a partner shares the account as a customer, opportunity or prospect."""
    usable = [p for p in paths if p.relationship in RELATIONSHIPS]
    partners = sorted({p.partner_id for p in usable})
    detail: dict[str, Any] = {"partners": partners, "overlaps": len(usable)}
    if not paths:
        return GateResult("overlap", False, "no partner shares this account any more", detail)
    if not usable:
        found = ", ".join(sorted({p.relationship for p in paths}))
        reason = f"no overlap as a customer, opportunity or prospect (found: {found})"
        return GateResult("overlap", False, reason, detail)
    if account.is_customer and not include_customers:
        reason = f"{account.account_id} is already our customer (qualify.include_customers)"
        return GateResult("overlap", False, reason, detail)
    count = f"{len(partners)} partner{'s' if len(partners) > 1 else ''}"
    return GateResult("overlap", True, f"shared with {count}: {', '.join(partners)}", detail)


def warmth_standing(path: PartnerPath, score: float, config: WarmthConfig) -> tuple[bool, bool]:
    """Whether one path passes the warmth gate, and whether it waits for the partner's answer.

    An answer decides: strong or some pass, none fails. Without an answer, a score below
    min_score fails; above it, the path passes, or with confirmation required it waits.
    """
    if path.answer is not None:
        return path.answer in POSITIVE_ANSWERS, False
    if score < config.min_score:
        return False, False
    if config.require_confirmation:
        return False, True
    return True, False


def warmth_verdict(
    path: PartnerPath | None, score: WarmthScore | None, config: WarmthConfig
) -> GateResult:
    """Pass on the partner's latest answer strong or some, or without confirmation on the score.

    An answer 'none' always fails. With confirmation required, a path with no answer yet fails
    as `awaiting` when its score is high enough to ask the partner, else as too cold to ask.
    """
    if path is None or score is None:
        return GateResult("warmth", False, "no partner path", {"awaiting": False})
    passed, awaiting = warmth_standing(path, score.total, config)
    detail: dict[str, Any] = {
        "partner_id": path.partner_id,
        "partner_account_id": path.partner_account_id,
        "relationship": path.relationship,
        "score": score.total,
        "parts": score.parts,
        "answer": path.answer,
        "answered_at": path.answered_at.isoformat() if path.answered_at else None,
        "awaiting": awaiting,
    }
    partner = f"partner {path.partner_id}"
    warmth = f"warmth {_points(score.total)}"
    minimum = _points(config.min_score)
    if path.answer is not None:
        reason = f"{partner} answered '{path.answer}' on {_day(path.answered_at)}"
    elif awaiting:
        reason = f"waiting for {partner} to confirm warmth ({warmth}, at least {minimum})"
    elif passed:
        reason = f"{warmth} with {partner}, at least {minimum}"
    else:
        reason = f"{warmth} with {partner} is below {minimum}"
        if config.require_confirmation:
            reason += "; too cold to ask"
    return GateResult("warmth", passed, reason, detail)


def path_rank(
    path: PartnerPath, score: float, config: WarmthConfig
) -> tuple[int, int, float, str, str]:
    """Sort key for one partner path into an account, best path first.

    Passing paths first (a 'strong' answer before 'some', then by score), then paths waiting
    for an answer, then the rest; ties go to the lower partner and partner account id.
    """
    passed, awaiting = warmth_standing(path, score, config)
    tier = 0 if passed else 1 if awaiting else 2
    answer = _ANSWER_RANK.get(path.answer or "", 0) if passed else 0
    return (tier, -answer, -score, path.partner_id, path.partner_account_id)


def fit_verdict(account: AccountFacts, rules: Sequence[IcpRule]) -> GateResult:
    """Pass when the account meets every ICP rule; each failed rule is named in the reason."""
    results = check_icp(account, rules)
    detail: dict[str, Any] = {
        "fit_score": fit_score(results),
        "rules": [{"rule": r.rule, "passed": r.passed, "reason": r.reason} for r in results],
    }
    failed = [r.reason for r in results if not r.passed]
    if failed:
        return GateResult("fit", False, "; ".join(failed), detail)
    if not results:
        return GateResult("fit", True, "no ICP rules set", detail)
    return GateResult("fit", True, f"fits the ICP ({', '.join(r.rule for r in results)})", detail)


def resolve_owner(
    account: AccountFacts,
    roster: Roster,
    loads: RepLoads,
    *,
    previous_owner_id: str | None = None,
) -> OwnerResolution:
    """The account owner if active, else the territory's active rep with the most spare capacity.

    Spare capacity is capacity minus the leads counted in `loads`. Among the territory's reps
    the lead's previous owner is kept while it still has room (no reshuffling on re-runs);
    otherwise the rep with the fewest leads wins, then the lowest rep_id.
    """
    owner = roster.by_id.get(account.owner_id) if account.owner_id else None
    if owner is not None and owner.is_active:
        return OwnerResolution(owner.rep_id, "account owner", f"account owner {owner.rep_id}")
    if account.owner_id is None:
        why = "the account has no owner"
    elif owner is None:
        why = f"owner {account.owner_id} is not one of our reps"
    else:
        why = f"owner {account.owner_id} is inactive"
    territory = (account.territory or "").strip()
    if not territory:
        return OwnerResolution(None, "", f"no motion: {why} and no territory")
    if not roster.active_by_territory.get(_territory_key(territory)):
        reason = f"no motion: {why} and territory {territory} has no active rep"
        return OwnerResolution(None, "", reason)
    previous = roster.by_id.get(previous_owner_id) if previous_owner_id else None
    keep = (
        previous is not None
        and previous.is_active
        and _territory_key(previous.territory) == _territory_key(territory)
        and loads.has_room(previous)
    )
    chosen = previous if keep else loads.lightest(territory)
    if chosen is None:
        reason = f"no motion: {why} and every active rep in territory {territory} is at capacity"
        return OwnerResolution(None, "", reason)
    # The reason leaves out the rep's load: it moves with every other lead, the choice does not.
    return OwnerResolution(chosen.rep_id, "territory", f"territory {territory} rep {chosen.rep_id}")


def motion_action(path: PartnerPath | None) -> str:
    """partner_intro when the partner has the account as a customer and answered strong,
    co_sell when the partner is working an opportunity there, else rep_outreach."""
    if path is not None and path.relationship == "customer" and path.answer == "strong":
        return PARTNER_INTRO
    if path is not None and path.relationship == "opportunity":
        return CO_SELL
    return REP_OUTREACH


def motion_verdict(
    account: AccountFacts,
    path: PartnerPath | None,
    roster: Roster,
    loads: RepLoads,
    *,
    sla_days: SlaDaysConfig,
    previous_owner_id: str | None = None,
) -> GateResult:
    """Pass when an owner resolves; the action follows from the path, the deadline from the SLA."""
    action = motion_action(path)
    owner = resolve_owner(account, roster, loads, previous_owner_id=previous_owner_id)
    days = int(getattr(sla_days, action))
    detail: dict[str, Any] = {
        "owner_id": owner.owner_id,
        "how": owner.how,
        "action": action,
        "sla_days": days,
    }
    if owner.owner_id is None:
        return GateResult("motion", False, owner.reason, detail)
    reason = f"{action} by {owner.reason} within {days} day{'s' if days != 1 else ''}"
    return GateResult("motion", True, reason, detail)


def lead_verdict(results: Sequence[GateResult]) -> LeadVerdict:
    """EQL when every gate passed; warmth_requested when only a partner's answer is missing."""
    failed = [r for r in results if not r.passed]
    names = ";".join(r.gate for r in failed)
    if not failed:
        return LeadVerdict(EQL, "", ALL_PASSED)
    if len(failed) == 1 and failed[0].gate == "warmth" and failed[0].detail.get("awaiting"):
        return LeadVerdict(WARMTH_REQUESTED, names, failed[0].reason)
    return LeadVerdict(CANDIDATE, names, failed[0].reason)
