"""Fit: does one of our accounts match the ideal customer profile set in doorstep.toml [icp]?

Each configured rule is checked on its own and named in the reason when it fails. A rule that
needs a value the account does not have fails with "<value> unknown": an unproven fit is not a
fit, and the reason says what to fill in. Values no rule asks about are never needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from doorstep.config import ConfigError, IcpConfig, IcpRange

try:
    from doorstep.map.normalize import normalise_country
except ImportError:  # the mapping stage's normaliser is optional here; compare codes as written

    def normalise_country(country: str | None) -> str | None:
        """The country as an upper-case code, or None when empty."""
        return country.strip().upper() or None if isinstance(country, str) else None


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class AccountFacts:
    """What we know about one of our accounts: its CRM columns and its extra attributes."""

    account_id: str
    name: str | None = None
    country: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    owner_id: str | None = None
    territory: str | None = None
    is_customer: bool | None = None
    website: str | None = None
    attributes: Mapping[str, Any] | None = None

    def value(self, column: str) -> Any:
        """A column's value, or the extra attribute of that name; None when missing."""
        if column in ACCOUNT_COLUMNS:
            return getattr(self, column)
        return (self.attributes or {}).get(column)


ACCOUNT_COLUMNS = frozenset(f.name for f in fields(AccountFacts)) - {"attributes"}


def memo_key(value: Any) -> tuple[type, Any]:
    """A value as a memo key: with its type, so True, 1 and 1.0 stay apart."""
    return (type(value), value)


@dataclass(slots=True)  # not frozen: freezing costs more than the gate itself at 100k rows
class RuleResult:
    """One ICP rule's verdict on one account."""

    rule: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class IcpRule:
    """One ICP rule: a list of allowed values or a numeric range, on one account value."""

    rule: str
    column: str
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    label: str = ""
    # Verdicts by value: accounts repeat values, and a verdict depends on the value alone.
    _verdicts: dict[Any, RuleResult] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def check(self, account: AccountFacts) -> RuleResult:
        """This rule's verdict on `account`."""
        raw = self.value_of(account)
        key = memo_key(raw)
        try:
            known = self._verdicts.get(key)
        except TypeError:  # an unhashable attribute value
            return self._check_value(raw)
        if known is None:
            known = self._verdicts[key] = self._check_value(raw)
        return known

    def _check_value(self, raw: Any) -> RuleResult:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return RuleResult(self.rule, False, f"{self.label} unknown")
        if self.allowed:
            return self._check_listed(raw)
        return self._check_range(raw)

    def value_of(self, account: AccountFacts) -> Any:
        """The account value this rule looks at."""
        return account.value(self.column)

    def _check_listed(self, raw: Any) -> RuleResult:
        shown = f"'{raw}'"
        if self.column == "country":
            key = country_key(raw)
            shown += "" if str(raw).strip().upper() == key else f" ({key})"
        else:
            key = value_key(raw)
        if key in self.allowed_keys:
            return RuleResult(self.rule, True, f"{self.label} {shown} in ICP")
        allowed = ", ".join(self.allowed)
        return RuleResult(self.rule, False, f"{self.label} {shown} not in ICP ({allowed})")

    def _check_range(self, raw: Any) -> RuleResult:
        number = _number(raw)
        if number is None:
            return RuleResult(self.rule, False, f"{self.label} '{raw}' is not a number")
        shown = _format_number(number)
        if self.minimum is not None and number < self.minimum:
            low = _format_number(self.minimum)
            return RuleResult(self.rule, False, f"{self.label} {shown} below ICP minimum {low}")
        if self.maximum is not None and number > self.maximum:
            high = _format_number(self.maximum)
            return RuleResult(self.rule, False, f"{self.label} {shown} above ICP maximum {high}")
        return RuleResult(self.rule, True, f"{self.label} {shown} within ICP ({self.bounds})")

    @property
    def allowed_keys(self) -> frozenset[str]:
        """The allowed values, normalised the way account values are."""
        return _allowed_keys(self.column, self.allowed)

    @property
    def bounds(self) -> str:
        """The range as people write it: '50-5,000', 'at least 50', 'at most 5,000'."""
        low = None if self.minimum is None else _format_number(self.minimum)
        high = None if self.maximum is None else _format_number(self.maximum)
        if low and high:
            return f"{low}-{high}"
        return f"at least {low}" if low else f"at most {high}"


@lru_cache(maxsize=256)
def _allowed_keys(column: str, allowed: tuple[str, ...]) -> frozenset[str]:
    if column == "country":
        return frozenset(country_key(v) for v in allowed)
    return frozenset(value_key(v) for v in allowed)


@lru_cache(maxsize=4096)
def country_key(value: Any) -> str:
    # A value the normaliser does not know is compared as written, upper-cased.
    text = str(value).strip()
    return (normalise_country(text) or text).upper()


def value_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().casefold()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _format_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _range_rule(rule: str, column: str, low: float | None, high: float | None) -> list[IcpRule]:
    if low is None and high is None:
        return []
    return [IcpRule(rule, column, minimum=low, maximum=high, label=rule.replace("_", " "))]


def icp_rules(icp: IcpConfig) -> list[IcpRule]:
    """The rules [icp] sets, in a fixed order; an empty list or an unset bound adds no rule."""
    rules: list[IcpRule] = []
    if icp.industries:
        rules.append(IcpRule("industry", "industry", tuple(icp.industries), label="industry"))
    if icp.countries:
        rules.append(IcpRule("country", "country", tuple(icp.countries), label="country"))
    rules += _range_rule("employees", "employees", icp.employees_min, icp.employees_max)
    rules += _range_rule("annual_revenue", "annual_revenue", icp.revenue_min, icp.revenue_max)
    for column, spec in sorted(icp.extra.items()):
        if isinstance(spec, IcpRange):
            rules += _range_rule(column, column, spec.min, spec.max)
        elif spec:
            allowed = tuple(value_key(v) if not isinstance(v, str) else v for v in spec)
            rules.append(IcpRule(column, column, allowed, label=column.replace("_", " ")))
    return rules


def check_icp(account: AccountFacts, rules: Sequence[IcpRule]) -> list[RuleResult]:
    """Every rule's verdict on `account`, in rule order."""
    return [rule.check(account) for rule in rules]


def fit_score(results: Sequence[RuleResult]) -> float:
    """The share of rules passed, times 100; 100 when no rule is set."""
    if not results:
        return 100.0
    return round(100.0 * sum(r.passed for r in results) / len(results), 1)


# --- learned fit: a model of our won and lost accounts, as one more rule ------------------

LEARNED_RULE = "learned"


def account_features(account: AccountFacts) -> dict[str, float | str]:
    """The values the learned fit looks at: industry, country, and log-scaled size."""
    features: dict[str, float | str] = {}
    if account.industry and account.industry.strip():
        features["industry"] = account.industry.strip().casefold()
    if account.country and account.country.strip():
        features["country"] = country_key(account.country)
    for name, value in (("employees", account.employees), ("revenue", account.annual_revenue)):
        if value is None:
            features[f"{name}_unknown"] = 1.0
        else:
            features[f"log_{name}"] = math.log1p(max(float(value), 0.0))
    return features


@dataclass
class LearnedFit:
    """A win-probability model learned from the accounts we won and lost."""

    model: Any
    trained_on: int

    def probabilities(self, accounts: Sequence[AccountFacts]) -> dict[str, float]:
        """Each account's learned win probability, scored in one batch."""
        if not accounts:
            return {}
        won = self.model.predict_proba([account_features(a) for a in accounts])[:, 1]
        return {a.account_id: round(float(p), 4) for a, p in zip(accounts, won, strict=True)}


def learn_fit(
    accounts: Sequence[AccountFacts], won: Sequence[bool], *, min_history: int
) -> tuple[LearnedFit | None, str]:
    """Fit a logistic regression of won on account features; None and why when it cannot."""
    wins = sum(won)
    if len(accounts) < min_history or wins == 0 or wins == len(won):
        n = len(accounts)
        why = (
            f"learned fit skipped: {n} account{'' if n == 1 else 's'} with a closed "
            f"opportunity ({wins} won), need {min_history} with both wins and losses"
        )
        return None, why
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError as exc:
        raise ConfigError(
            "[icp] learned_min_probability needs scikit-learn: pip install scikit-learn, "
            "or remove the key."
        ) from exc
    model = make_pipeline(
        DictVectorizer(sparse=False), LogisticRegression(class_weight="balanced", max_iter=1000)
    )
    model.fit([account_features(a) for a in accounts], list(won))
    return LearnedFit(model, len(accounts)), f"learned fit trained on {len(accounts)} accounts"


@dataclass(frozen=True)
class LearnedRule(IcpRule):
    """The learned fit as an ICP rule: the account's win probability must reach the minimum."""

    probabilities: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    def value_of(self, account: AccountFacts) -> Any:
        """The account's learned win probability; None when it was not scored."""
        return self.probabilities.get(account.account_id)


def learned_rule(minimum: float, probabilities: Mapping[str, float]) -> LearnedRule:
    """The learned rule for accounts scored in `probabilities`."""
    return LearnedRule(
        LEARNED_RULE,
        LEARNED_RULE,
        minimum=minimum,
        label="learned win probability",
        probabilities=probabilities,
    )
