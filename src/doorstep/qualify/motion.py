"""Routing: which rep owns an EQL, what the motion is and by when; pure functions of the facts.

The rules in doorstep.toml [routing] are tried in order and the first that finds an owner wins:

    account_owner           the account's owner
    territory_round_robin   the account territory's reps, fewest open leads first
    partner_manager         the manager of the partner on the lead's chosen path
    queue                   a named fallback: a rep_id, or an email (a shared inbox)

A rep is skipped when inactive or full (capacity minus the open leads already theirs). A rule
with `when` applies only to leads whose facts match every condition. When no rule resolves, the
verdict has no owner and a reason starting "no motion:", and the lead stays a candidate.

Routing runs once, in the qualify stage's motion gate, on one typed input (`RoutingInput`) built
in one place (`routing_input`). The act stage routes the EQLs exactly as the gate decided and
never routes again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from doorstep.config import (
    ActionRule,
    Condition,
    ConditionRange,
    Config,
    RoutingRule,
    WarmthBands,
)
from doorstep.lifecycle import ACTION_LABELS, ACTIONS, CO_SELL, PARTNER_INTRO, REP_OUTREACH
from doorstep.qualify.fit import AccountFacts
from doorstep.qualify.warmth import PartnerPath

__all__ = ["ACTIONS", "ACTION_LABELS", "CO_SELL", "PARTNER_INTRO", "REP_OUTREACH"]
NO_MOTION = "no motion"


@dataclass(frozen=True, slots=True)
class PartnerFacts:
    """What routing and messages know of a partner."""

    partner_id: str
    name: str | None = None
    partner_manager_id: str | None = None
    contact_email: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingInput:
    """Everything a routing or action rule may test about one lead, in one typed value.

    Built by `routing_input` alone, so every rule sees the same facts wherever it runs.
    """

    account: AccountFacts
    path: PartnerPath | None
    partner: PartnerFacts | None
    warmth_score: float | None
    fit_score: float | None

    def facts(self, bands: WarmthBands | None = None) -> dict[str, Any]:
        """One flat mapping of the facts, as `when` conditions read them."""
        account = self.account
        facts: dict[str, Any] = dict(account.attributes or {})
        facts.update({name: getattr(account, name) for name in ACCOUNT_FACTS})
        facts["warmth_score"] = self.warmth_score
        facts["fit_score"] = self.fit_score
        path = self.path
        facts.update(
            {
                "partner_id": path.partner_id if path else None,
                "partner_account_id": path.partner_account_id if path else None,
                "relationship": path.relationship if path else None,
                "answer": path.answer if path else None,
                "partner_account_name": path.account_name if path else None,
                "partner_owner_email": path.partner_owner_email if path else None,
                "relationship_strength": path.relationship_strength if path else None,
                "contacts_engaged": path.contacts_engaged if path else None,
            }
        )
        partner = self.partner
        facts["partner_manager_id"] = partner.partner_manager_id if partner else None
        facts["partner_name"] = partner.name if partner else None
        facts["warmth_band"] = warmth_band(self.warmth_score, bands or WarmthBands())
        return facts


# The account columns a rule may test by name; anything else is read from its attributes.
ACCOUNT_FACTS = (
    "account_id", "name", "website", "country", "industry", "employees", "annual_revenue",
    "owner_id", "territory", "is_customer",
)
# Every fact `RoutingInput.facts` gives besides the account's attributes.
KNOWN_FACTS = frozenset(
    (*ACCOUNT_FACTS, "warmth_score", "fit_score", "partner_id", "partner_account_id",
     "relationship", "answer", "partner_account_name", "partner_owner_email",
     "relationship_strength", "contacts_engaged", "partner_manager_id", "partner_name",
     "warmth_band")
)


def routing_input(
    account: AccountFacts,
    path: PartnerPath | None,
    partners: Mapping[str, PartnerFacts],
    *,
    warmth_score: float | None,
    fit_score: float | None,
) -> RoutingInput:
    """The one routing input of a lead: its account, chosen path, that path's partner, scores."""
    partner = partners.get(path.partner_id) if path is not None else None
    return RoutingInput(account, path, partner, warmth_score, fit_score)


def rule_fact_names(config: Config) -> set[str]:
    """Every fact name a routing or action rule's `when` tests."""
    routing = config.routing
    names = {n for rule in routing.rules for n in rule.when}
    return names | {n for action in routing.actions for n in action.when}


class RepRecord(Protocol):
    """What routing needs to know about a rep; a missing `active` means active."""

    @property
    def rep_id(self) -> str: ...

    @property
    def territory(self) -> str | None: ...

    @property
    def capacity(self) -> int | None: ...

    @property
    def active(self) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class RepFacts:
    """A rep as the act stage knows it: routing facts, an email, and a manager to escalate to."""

    rep_id: str
    name: str | None = None
    email: str | None = None
    territory: str | None = None
    capacity: int | None = None
    active: bool | None = None
    manager_id: str | None = None


@dataclass(frozen=True)
class MotionRules:
    """The routing rules, action rules, SLA days and warmth bands from doorstep.toml."""

    rules: tuple[RoutingRule, ...]
    actions: tuple[ActionRule, ...] = ()
    default_action: str = REP_OUTREACH
    sla_days: Mapping[str, int] = field(
        default_factory=lambda: {PARTNER_INTRO: 3, CO_SELL: 5, REP_OUTREACH: 2}
    )
    warmth_bands: WarmthBands = field(default_factory=WarmthBands)


@dataclass(frozen=True)
class MotionVerdict:
    """Who owns a lead, the action, its deadline, the rule that decided, and why."""

    owner_id: str | None
    action: str
    due_at: datetime | None
    rule: str | None
    reason: str

    @property
    def resolved(self) -> bool:
        return self.owner_id is not None


def motion_rules(config: Config) -> MotionRules:
    """The motion rules a workspace's configuration sets."""
    routing = config.routing
    return MotionRules(
        rules=tuple(routing.rules),
        actions=tuple(routing.actions),
        default_action=routing.default_action,
        sla_days=config.qualify.sla_days.model_dump(),
        warmth_bands=routing.warmth_bands,
    )


def warmth_band(score: float | None, bands: WarmthBands) -> str | None:
    """'high', 'medium' or 'low' for a warmth score; None when the score is unknown."""
    if score is None:
        return None
    if score >= bands.high:
        return "high"
    return "medium" if score >= bands.medium else "low"


# --- conditions --------------------------------------------------------------------------


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool):
        return _truth(value) == _truth(wanted)
    if isinstance(wanted, int | float):
        number = _number(value)
        return number is not None and number == float(wanted)
    return str(value).strip().casefold() == str(wanted).strip().casefold()


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    return True if text in ("true", "1", "yes") else False if text in ("false", "0", "no") else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def condition_mismatch(facts: Mapping[str, Any], name: str, wanted: Condition) -> str | None:
    """Why the facts fail one condition, or None when they meet it."""
    value = facts.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"{name} unknown"
    if isinstance(wanted, ConditionRange):
        number = _number(value)
        if number is None:
            return f"{name} {value!r} is not a number"
        if wanted.min is not None and number < wanted.min:
            return f"{name} {_shown(number)} below {_shown(wanted.min)}"
        if wanted.max is not None and number > wanted.max:
            return f"{name} {_shown(number)} above {_shown(wanted.max)}"
        return None
    options = wanted if isinstance(wanted, list) else [wanted]
    if any(_same(value, option) for option in options):
        return None
    expected = " or ".join(repr(o) for o in options)
    return f"{name} is {value!r}, not {expected}"


def conditions_mismatch(facts: Mapping[str, Any], when: Mapping[str, Condition]) -> str | None:
    """Why the facts fail a rule's `when`, or None when they meet every condition."""
    for name, wanted in when.items():
        why = condition_mismatch(facts, name, wanted)
        if why is not None:
            return why
    return None


def choose_action(facts: Mapping[str, Any], rules: MotionRules) -> str:
    """The first action rule the facts match, else the default action."""
    for rule in rules.actions:
        if conditions_mismatch(facts, rule.when) is None:
            return rule.action
    return rules.default_action


# --- owners ------------------------------------------------------------------------------


def _is_active(rep: RepRecord) -> bool:
    return rep.active is not False


def _spare(rep: RepRecord, load: Mapping[str, int]) -> float:
    return math.inf if rep.capacity is None else rep.capacity - load.get(rep.rep_id, 0)


def _room(rep: RepRecord, load: Mapping[str, int]) -> str:
    taken = load.get(rep.rep_id, 0)
    return "no capacity limit" if rep.capacity is None else f"{taken} of {rep.capacity} taken"


def _rep_owner(
    rep_id: Any, label: str, reps: Mapping[str, RepRecord], load: Mapping[str, int]
) -> tuple[str | None, str]:
    """The rep `rep_id` when it can take one more lead, else why not."""
    if rep_id is None or not str(rep_id).strip():
        return None, f"no {label}"
    rep = reps.get(str(rep_id))
    if rep is None:
        return None, f"{label} {rep_id} is not one of our reps"
    if not _is_active(rep):
        return None, f"{label} {rep.rep_id} is inactive"
    if _spare(rep, load) <= 0:
        return None, f"{label} {rep.rep_id} is at capacity ({_room(rep, load)})"
    return rep.rep_id, f"{label} {rep.rep_id} ({_room(rep, load)})"


def _territory_owner(
    territory: Any,
    pools: Mapping[str, Sequence[RepRecord]],
    load: Mapping[str, int],
    previous_owner_id: str | None,
) -> tuple[str | None, str]:
    name = str(territory or "").strip()
    if not name:
        return None, "the account has no territory"
    pool = pools.get(name.casefold(), ())
    if not pool:
        return None, f"territory {name} has no active rep"
    spare = [r for r in pool if _spare(r, load) > 0]
    if not spare:
        return None, f"every active rep in territory {name} is at capacity"
    # The previous owner keeps the lead on re-runs; then fewest open leads, most room, rep_id.
    chosen = min(
        spare,
        key=lambda r: (r.rep_id != previous_owner_id, load.get(r.rep_id, 0), -_spare(r, load),
                       r.rep_id),
    )
    return chosen.rep_id, f"territory {name} rep {chosen.rep_id} ({_room(chosen, load)})"


def _queue_owner(
    queue: str, reps: Mapping[str, RepRecord], load: Mapping[str, int]
) -> tuple[str | None, str]:
    name = queue.strip()
    if name in reps:
        return _rep_owner(name, "queue rep", reps, load)
    if "@" in name:
        return name, f"queue {name}"
    return None, f"queue {name!r} is neither a rep_id nor an email"


class MotionRouter:
    """The routing rules bound to a set of reps, indexed once for routing many leads."""

    def __init__(self, reps: Mapping[str, RepRecord], rules: MotionRules) -> None:
        self.reps, self.rules = reps, rules
        pools: dict[str, list[RepRecord]] = {}
        for rep in reps.values():
            territory = (rep.territory or "").strip().casefold()
            if territory and _is_active(rep):
                pools.setdefault(territory, []).append(rep)
        self.pools = pools

    def _owner_for(
        self,
        rule: RoutingRule,
        facts: Mapping[str, Any],
        load: Mapping[str, int],
        previous_owner_id: str | None,
    ) -> tuple[str | None, str]:
        if rule.rule == "account_owner":
            return _rep_owner(facts.get("owner_id"), "account owner", self.reps, load)
        if rule.rule == "territory_round_robin":
            return _territory_owner(facts.get("territory"), self.pools, load, previous_owner_id)
        if rule.rule == "partner_manager":
            return _rep_owner(facts.get("partner_manager_id"), "partner manager", self.reps, load)
        return _queue_owner(rule.queue or "", self.reps, load)

    def resolve(
        self,
        facts: Mapping[str, Any],
        load: Mapping[str, int],
        *,
        now: datetime,
        previous_owner_id: str | None = None,
    ) -> MotionVerdict:
        """The motion for one lead; see `resolve_motion`."""
        rules = self.rules
        default_action = choose_action(facts, rules)
        misses: list[str] = []
        for number, rule in enumerate(rules.rules, start=1):
            mismatch = conditions_mismatch(facts, rule.when)
            if mismatch is not None:
                misses.append(f"{rule.rule} does not apply ({mismatch})")
                continue
            owner_id, how = self._owner_for(rule, facts, load, previous_owner_id)
            if owner_id is None:
                misses.append(how)
                continue
            action = rule.action or default_action
            days = int(rules.sla_days.get(action, 0))
            reason = (
                f"{ACTION_LABELS.get(action, action)} by {how}, rule {number} ({rule.rule}), "
                f"within {days} day{'' if days == 1 else 's'}"
            )
            return MotionVerdict(owner_id, action, now + timedelta(days=days), rule.rule, reason)
        why = "; ".join(misses) if misses else "no routing rules"
        return MotionVerdict(None, default_action, None, None, f"{NO_MOTION}: {why}")

    def assign(
        self,
        leads: Sequence[tuple[Mapping[str, Any], str | None]],
        load: Mapping[str, int],
        *,
        now: datetime,
    ) -> list[MotionVerdict]:
        """Resolve many leads in order, each owner taking one unit of capacity per lead."""
        taken = dict(load)
        verdicts = []
        for facts, previous in leads:
            verdict = self.resolve(facts, taken, now=now, previous_owner_id=previous)
            if verdict.owner_id is not None:
                taken[verdict.owner_id] = taken.get(verdict.owner_id, 0) + 1
            verdicts.append(verdict)
        return verdicts


def resolve_motion(
    facts: Mapping[str, Any],
    reps: Mapping[str, RepRecord],
    rules: MotionRules,
    load: Mapping[str, int],
    *,
    now: datetime,
    previous_owner_id: str | None = None,
) -> MotionVerdict:
    """The motion for one lead: the first routing rule that finds an owner, the action, the SLA.

    `facts` is what `lead_facts` builds; `load` counts the open leads each rep already owns;
    `previous_owner_id` keeps a territory lead with its owner on re-runs. Without an owner the
    verdict's reason starts "no motion:" and lists why each rule did not resolve. For many
    leads, build one `MotionRouter` and call its `resolve` or `assign`.
    """
    return MotionRouter(reps, rules).resolve(
        facts, load, now=now, previous_owner_id=previous_owner_id
    )


def assign_motions(
    leads: Sequence[tuple[Mapping[str, Any], str | None]],
    reps: Mapping[str, RepRecord],
    rules: MotionRules,
    load: Mapping[str, int],
    *,
    now: datetime,
) -> list[MotionVerdict]:
    """Resolve many leads in the given order, each one's owner taking one unit of capacity.

    `leads` holds (facts, previous owner) pairs; `load` is not changed.
    """
    return MotionRouter(reps, rules).assign(leads, load, now=now)
