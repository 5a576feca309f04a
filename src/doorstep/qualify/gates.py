"""The four gates, each a pure function from evidence to a verdict with a reason.

overlap -> warmth -> fit -> motion: a lead is an EQL only when all four pass. Nothing one gate
finds can turn another gate's failure into a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorstep.config import WarmthConfig
from doorstep.ingest.contract import RELATIONSHIPS
from doorstep.lifecycle import CANDIDATE, EQL, GATES, WARMTH_REQUESTED
from doorstep.qualify.fit import AccountFacts, IcpRule, check_icp, fit_score
from doorstep.qualify.warmth import POSITIVE_ANSWERS, PartnerPath, WarmthScore

__all__ = ["CANDIDATE", "EQL", "GATES", "WARMTH_REQUESTED"]
ALL_PASSED = "all four gates passed"


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


def unasked_warmth(verdict: GateResult, blocking: Sequence[str]) -> GateResult:
    """A warmth verdict that would wait for the partner, for a lead that fails other gates:
    the partner is not asked, and the reason says so instead of claiming a check."""
    detail = {**verdict.detail, "awaiting": False}
    partner = detail.get("partner_id")
    warmth = _points(float(detail.get("score", 0.0)))
    gates = " and ".join(blocking)
    reason = (
        f"warmth {warmth} with partner {partner} is enough to ask, but partner {partner} is "
        f"not asked while the lead fails {gates}"
    )
    return GateResult("warmth", False, reason, detail)


def lead_verdict(results: Sequence[GateResult]) -> LeadVerdict:
    """EQL when every gate passed; warmth_requested when only a partner's answer is missing.

    The reason names every failed gate with its own reason, in gate order.
    """
    order = {gate: i for i, gate in enumerate(GATES)}
    failed = sorted((r for r in results if not r.passed), key=lambda r: order.get(r.gate, 9))
    names = ";".join(r.gate for r in failed)
    if not failed:
        return LeadVerdict(EQL, "", ALL_PASSED)
    if len(failed) == 1 and failed[0].gate == "warmth" and failed[0].detail.get("awaiting"):
        return LeadVerdict(WARMTH_REQUESTED, names, failed[0].reason)
    if len(failed) == 1:
        return LeadVerdict(CANDIDATE, names, failed[0].reason)
    return LeadVerdict(CANDIDATE, names, "; ".join(f"{r.gate}: {r.reason}" for r in failed))
