"""The workspace configuration: `doorstep.toml`, one typed model."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG_FILE = "doorstep.toml"
DATABASE_URL_ENV = "DOORSTEP_DATABASE_URL"


class ConfigError(ValueError):
    """The workspace or its doorstep.toml is not usable; the message says why and what to do."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file doorstep.db in the workspace"
    )


class IcpRange(_Section):
    min: float | None = None
    max: float | None = None


class IcpConfig(_Section):
    industries: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    employees_min: int | None = 50
    employees_max: int | None = 5000
    revenue_min: float | None = None
    revenue_max: float | None = None
    extra: dict[str, list[str | int | float | bool] | IcpRange] = Field(
        default_factory=dict,
        description="more rules on any account column or attribute: a list of allowed values "
        "or a range {min, max}",
    )
    learned_min_probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="also require this win probability from a model learned on won/lost "
        "accounts (needs scikit-learn)",
    )
    learned_min_history: int = Field(
        30, ge=2, description="accounts with a closed opportunity needed to learn that model"
    )


class WarmthConfig(_Section):
    require_confirmation: bool = True
    max_activity_age_days: int = Field(180, gt=0)
    min_score: float = Field(50, ge=0, le=100)


class SlaDaysConfig(_Section):
    partner_intro: int = Field(3, ge=0)
    co_sell: int = Field(5, ge=0)
    rep_outreach: int = Field(2, ge=0)


class QualifyConfig(_Section):
    include_customers: bool = Field(
        False, description="also qualify accounts that are already our customers"
    )
    sla_days: SlaDaysConfig = Field(default_factory=lambda: SlaDaysConfig())


MotionActionName = Literal["partner_intro", "co_sell", "rep_outreach"]
RoutingRuleName = Literal["account_owner", "territory_round_robin", "partner_manager", "queue"]
ChannelName = Literal["email", "webhook", "slack", "hubspot", "salesforce"]


class ConditionRange(_Section):
    min: float | None = None
    max: float | None = None


# A condition on one lead or account value: equal to a value, one of a list, or in a range.
Condition = str | int | float | bool | list[str | int | float | bool] | ConditionRange


class RoutingRule(_Section):
    rule: RoutingRuleName
    when: dict[str, Condition] = Field(
        default_factory=dict, description="the rule applies only to leads matching every condition"
    )
    action: MotionActionName | None = Field(
        None, description="the action for leads this rule routes; default: the [routing] actions"
    )
    queue: str | None = Field(None, description="for rule = 'queue': a rep_id or an email")

    @model_validator(mode="after")
    def _queue_named(self) -> RoutingRule:
        if self.rule == "queue" and not (self.queue or "").strip():
            raise ValueError("rule 'queue' needs queue = a rep_id or an email")
        if self.rule != "queue" and self.queue is not None:
            raise ValueError(f"queue is only for rule 'queue', not '{self.rule}'")
        return self


class ActionRule(_Section):
    action: MotionActionName
    when: dict[str, Condition] = Field(default_factory=dict)


class WarmthBands(_Section):
    high: float = Field(75, ge=0, le=100, description="warmth score from which a lead is 'high'")
    medium: float = Field(50, ge=0, le=100, description="... 'medium'; below it 'low'")


def _default_routing_rules() -> list[RoutingRule]:
    return [RoutingRule(rule="account_owner"), RoutingRule(rule="territory_round_robin")]


def _default_action_rules() -> list[ActionRule]:
    return [
        ActionRule(action="partner_intro", when={"relationship": "customer", "answer": "strong"}),
        ActionRule(action="co_sell", when={"relationship": "opportunity"}),
    ]


class RoutingConfig(_Section):
    rules: list[RoutingRule] = Field(
        default_factory=_default_routing_rules, description="tried in order; the first owner wins"
    )
    actions: list[ActionRule] = Field(
        default_factory=_default_action_rules, description="tried in order; the first match wins"
    )
    default_action: MotionActionName = "rep_outreach"
    warmth_bands: WarmthBands = Field(default_factory=lambda: WarmthBands())


def _email_only() -> list[ChannelName]:
    return ["email"]


class ActChannels(_Section):
    rep: list[ChannelName] = Field(default_factory=_email_only)
    partner: list[ChannelName] = Field(default_factory=_email_only)
    escalation: list[ChannelName] = Field(default_factory=_email_only)


class CrmConfig(_Section):
    """Write-back to the CRM (channels "hubspot" and "salesforce"). Tokens come from the
    environment: DOORSTEP_HUBSPOT_TOKEN / DOORSTEP_SALESFORCE_TOKEN, and to refresh an expired
    OAuth token, DOORSTEP_<CRM>_REFRESH_TOKEN, _CLIENT_ID and _CLIENT_SECRET."""

    hubspot_url: str = Field("https://api.hubapi.com", description="HubSpot's API")
    hubspot_status_property: str = Field(
        "doorstep_eql_status", description="the company property that gets the EQL status"
    )
    salesforce_url: str | None = Field(
        None, description="your Salesforce instance, https://yourcompany.my.salesforce.com"
    )
    salesforce_api_version: str = "v60.0"
    salesforce_status_field: str = Field(
        "Doorstep_EQL_Status__c", description="the account field that gets the EQL status"
    )
    status_value: str = Field("EQL", description="the status written when a lead is an EQL")
    status_values: dict[str, str] = Field(
        default_factory=lambda: {"opportunity": "EQL opportunity", "won": "EQL won",
                                 "lost": "EQL lost", "rejected": "EQL rejected",
                                 "expired": "EQL expired"},
        description="the status written when a routed lead moves on, by lead status",
    )

    @model_validator(mode="after")
    def _known_statuses(self) -> CrmConfig:
        from doorstep.lifecycle import STATUSES

        unknown = sorted(set(self.status_values) - set(STATUSES))
        if unknown:
            raise ValueError(f"status_values: {unknown[0]!r} is not a lead status; use "
                             f"{', '.join(STATUSES)}")
        return self


class ActConfig(_Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    crm: CrmConfig = Field(default_factory=lambda: CrmConfig())

    channels: ActChannels = Field(default_factory=lambda: ActChannels())
    deliver: Literal["send", "file"] = Field(
        "send", description="send through the channels, or write each message into "
        "WORKSPACE/outbox/ instead (.eml for email, .json for webhooks and Slack)"
    )
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_starttls: bool = False
    smtp_username: str | None = Field(None, description="password: DOORSTEP_SMTP_PASSWORD")
    sender: str = Field("doorstep@localhost", alias="from")
    webhook_url: str | None = None
    webhook_secret: str | None = Field(None, description="DOORSTEP_WEBHOOK_SECRET overrides it")
    slack_webhook_url: str | None = None
    timeout_seconds: float = Field(10, gt=0)
    max_attempts: int = Field(5, ge=1)
    retry_seconds: float = Field(60, ge=0, description="first retry delay; doubles each attempt")
    max_retry_seconds: float = Field(6 * 3600, ge=0)
    lease_seconds: float = Field(
        300, ge=0, description="a claimed delivery a stopped worker left is retried after this"
    )
    batch_size: int = Field(100, ge=1)
    escalate: bool = True
    expire_after_days: int = Field(
        14, ge=0, description="a routed lead nobody accepted expires this long after its "
        "deadline, freeing its owner (0: never)"
    )


class MappingConfig(_Section):
    threshold: float = Field(0.9, ge=0, le=1, description="minimum match probability")
    workers: int = Field(
        0, ge=0, description="processes used to normalise and compare names (0: every core)"
    )
    refit_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="an incremental map fits the model again when more than this share of "
        "the partner records it was fitted on are new or changed",
    )


class MeasureConfig(_Section):
    window_days: int = Field(90, gt=0)
    holdout_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of EQLs (drawn by a hash of the lead id) that get no motion, "
        "to measure the motion's lift against",
    )


class WebConfig(_Section):
    share_amounts: bool = Field(False, description="show opportunity amounts to partners")
    page_cache_seconds: float = Field(
        5.0, ge=0, le=60,
        description="send a page again for this long while its data is unchanged (0: never)",
    )


SharingLevel = Literal["hidden", "counts", "overlaps", "full"]
SHARING_LEVELS: tuple[str, ...] = ("hidden", "counts", "overlaps", "full")
DEFAULT_SHARED_FIELDS = ["name", "website", "country", "relationship"]


class PopulationConfig(_Section):
    side: Literal["ours", "partner"] = Field(
        "ours", description="whose accounts the population filters: ours or a partner's"
    )
    when: dict[str, Condition] = Field(
        default_factory=dict, description="conditions on any column or attribute, all must hold"
    )


class SharingPolicy(BaseModel):
    """What we let one partner see: a level per population of ours, and the fields shown."""

    model_config = ConfigDict(extra="allow")
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_SHARED_FIELDS))

    @model_validator(mode="after")
    def _levels_are_known(self) -> SharingPolicy:
        for name, level in (self.model_extra or {}).items():
            if level not in SHARING_LEVELS:
                raise ValueError(
                    f"population '{name}' has level {level!r}; use one of "
                    f"{', '.join(SHARING_LEVELS)}"
                )
        return self

    def levels(self) -> dict[str, str]:
        """The level set for each named population (unnamed ones are hidden)."""
        return {str(k): str(v) for k, v in (self.model_extra or {}).items()}


class ShareConfig(_Section):
    max_message_age_seconds: int = Field(300, ge=1, description="older signed messages are refused")
    min_set_size: int = Field(20, ge=1, description="a private sync refuses smaller sets")
    max_syncs_per_day: int = Field(10, ge=1, description="private syncs per partner per day")
    min_set_change: int = Field(
        5, ge=0, description="refuse a set whose size moved by fewer records than this since the "
        "last sync, but not by none (differential probing)"
    )


class ImportConfig(_Section):
    date_format: Literal["MM/DD/YYYY", "DD/MM/YYYY", "DD.MM.YYYY"] | None = Field(
        None, description="how dates are written when not ISO 8601; unset: ISO 8601 only"
    )
    decimal: Literal[".", ","] = Field(".", description="the decimal mark of numbers")
    profile: Literal["hubspot", "salesforce", "crossbeam", "reveal"] | None = Field(
        None, description="the export layouts files under data/ are read as; unset: any known "
        "layout, recognised by its headers"
    )
    encoding: str = Field(
        "utf-8", description="the text encoding of CSV files without a byte-order mark "
        "(UTF-8 and UTF-16 with one are recognised by it)"
    )

    @model_validator(mode="after")
    def _known_encoding(self) -> ImportConfig:
        import codecs

        try:
            codecs.lookup(self.encoding)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {self.encoding!r}; use a Python codec name "
                             "such as utf-8, cp1252 or latin-1") from exc
        return self


class Config(_Section):
    """Everything in doorstep.toml; every key has a default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    populations: dict[str, PopulationConfig] = Field(default_factory=dict)
    sharing: dict[str, SharingPolicy] = Field(default_factory=dict)
    share: ShareConfig = Field(default_factory=lambda: ShareConfig())

    store: StoreConfig = Field(default_factory=lambda: StoreConfig())
    icp: IcpConfig = Field(default_factory=lambda: IcpConfig())
    warmth: WarmthConfig = Field(default_factory=lambda: WarmthConfig())
    qualify: QualifyConfig = Field(default_factory=lambda: QualifyConfig())
    mapping: MappingConfig = Field(default_factory=lambda: MappingConfig())
    routing: RoutingConfig = Field(default_factory=lambda: RoutingConfig())
    act: ActConfig = Field(default_factory=lambda: ActConfig())
    measure: MeasureConfig = Field(default_factory=lambda: MeasureConfig())
    web: WebConfig = Field(default_factory=lambda: WebConfig())
    import_: ImportConfig = Field(default_factory=lambda: ImportConfig(), alias="import")


def _describe(error: Any) -> str:
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"'{key}': {error['msg'].lower()} (got {error.get('input')!r})"


def load_config(workspace: Path) -> Config:
    """Read and validate `doorstep.toml` in the workspace; a missing file means all defaults."""
    path = workspace / CONFIG_FILE
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}; fix the file and retry.") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{path}: {problems}.") from exc


def database_url(workspace: Path, config: Config) -> str:
    """The store's URL: DOORSTEP_DATABASE_URL, then [store] url, then SQLite in the workspace."""
    url = os.environ.get(DATABASE_URL_ENV) or config.store.url
    if url:
        return url
    return f"sqlite:///{(workspace / 'doorstep.db').resolve()}"


DEFAULT_TOML = """\
# doorstep workspace configuration.
# Every key is optional; the values shown are the defaults.
# Tables live under data/ as CSV or Parquet (one file per table).

[store]
# Where doorstep keeps its state. Default: the SQLite file doorstep.db beside this file.
# The environment variable DOORSTEP_DATABASE_URL overrides it (e.g. for PostgreSQL:
# postgresql+psycopg://user@host/dbname).
# url = "sqlite:///doorstep.db"

[icp]
# Ideal customer profile. An empty list means "any".
industries = []
countries = []          # ISO alpha-2 codes, e.g. ["US", "GB", "DE"]
employees_min = 50
employees_max = 5000
# revenue_min = 1_000_000
# revenue_max = 500_000_000
# More rules on any account column or extra column: allowed values, or a range.
# extra = { segment = ["enterprise", "mid-market"], seats = { min = 20 } }
# A rule on a value the account does not have fails with "<column> unknown".
# A learned rule: a model of our won and lost accounts must give at least this win
# probability. It can only fail accounts, never pass one the rules above fail.
# learned_min_probability = 0.2
# learned_min_history = 30    # accounts with a closed opportunity needed to learn it

[warmth]
# With require_confirmation, a lead is warm only when the partner answers strong or some;
# without it, a warmth score of at least min_score is enough. An answer 'none' is never warm.
require_confirmation = true
max_activity_age_days = 180   # partner activity older than this counts as cold
min_score = 50                # warmth score (0-100) needed to ask the partner

[qualify]
# Our existing customers are left out unless this is true.
include_customers = false

[qualify.sla_days]
# Days an owner has to act on an EQL, by action.
partner_intro = 3
co_sell = 5
rep_outreach = 2

[routing]
# Who owns an EQL: rules tried in order, the first that finds an active rep with spare
# capacity (capacity minus open leads) wins. Rules: account_owner, territory_round_robin
# (the account territory's active reps, fewest open leads first), partner_manager (of the
# chosen partner), queue (a rep_id or an email). `when` limits a rule to matching leads, on
# any lead or account value: a value, a list of values, or a range { min, max }. `action`
# sets the action for the leads a rule routes. Nothing resolves: the lead stays a candidate.
rules = [
  { rule = "account_owner" },
  { rule = "territory_round_robin" },
]
# rules = [
#   { rule = "partner_manager", when = { warmth_band = "high", relationship = "customer" } },
#   { rule = "account_owner", when = { employees = { min = 1000 } } },
#   { rule = "territory_round_robin" },
#   { rule = "queue", queue = "partner-leads@example.com", action = "rep_outreach" },
# ]
# The action, first match wins: partner_intro (the partner introduces our rep), co_sell
# (a joint account plan with the partner), rep_outreach (our rep names the partner).
actions = [
  { action = "partner_intro", when = { relationship = "customer", answer = "strong" } },
  { action = "co_sell", when = { relationship = "opportunity" } },
]
default_action = "rep_outreach"
# warmth_band is "high" from this warmth score, "medium" from that, else "low".
warmth_bands = { high = 75, medium = 50 }

[act]
# Channels per audience: "email", "webhook" (JSON, HMAC-SHA256 signed), "slack", and
# "hubspot" or "salesforce": a task for the owner and the EQL status on the company or account
# (settings in [act.crm] below).
channels = { rep = ["email"], partner = ["email"], escalation = ["email"] }
# "file" writes each message into outbox/ in this workspace instead of sending it (.eml for
# email, .json for webhooks and Slack): read them there. Set "send" once the SMTP server,
# webhook or Slack settings below are real.
deliver = "file"
smtp_host = "localhost"
smtp_port = 25
smtp_starttls = false
# smtp_username = "doorstep"         # password: DOORSTEP_SMTP_PASSWORD
from = "doorstep@localhost"
# webhook_url = "https://crm.example.com/hooks/doorstep"
# webhook_secret = "..."             # or DOORSTEP_WEBHOOK_SECRET
# slack_webhook_url = "https://hooks.slack.com/services/..."
timeout_seconds = 10
max_attempts = 5          # then the delivery is dead
retry_seconds = 60        # first retry after this; doubles each attempt
max_retry_seconds = 21600
lease_seconds = 300       # a delivery a stopped worker was sending is retried after this
batch_size = 100
escalate = true           # overdue motions go to the rep's manager (reps column manager_id),
                          # else to the partner manager
expire_after_days = 14    # a routed lead nobody accepted expires this long after its deadline

[act.crm]
# Write-back for the "hubspot" and "salesforce" channels. Tokens come from the environment:
# DOORSTEP_HUBSPOT_TOKEN (a private app's token) or DOORSTEP_SALESFORCE_TOKEN; to refresh an
# expired OAuth token, DOORSTEP_<CRM>_REFRESH_TOKEN with _CLIENT_ID and _CLIENT_SECRET.
hubspot_url = "https://api.hubapi.com"
hubspot_status_property = "doorstep_eql_status"   # a company property you create in HubSpot
# salesforce_url = "https://yourcompany.my.salesforce.com"
salesforce_api_version = "v60.0"
salesforce_status_field = "Doorstep_EQL_Status__c"  # a custom account field you create
status_value = "EQL"

[act.crm.status_values]
# The status written when a routed lead moves on; a lead status missing here leaves it as is.
opportunity = "EQL opportunity"
won = "EQL won"
lost = "EQL lost"
rejected = "EQL rejected"
expired = "EQL expired"

[mapping]
# Minimum match probability for a fuzzy (probabilistic) account match.
threshold = 0.9
workers = 0               # processes that normalise and compare names; 0 uses every core
refit_share = 0.2         # a map is incremental (scores only new or changed partner records
                          # with the saved model) until more than this share of them changed;
                          # then, or with `doorstep map --full`, the model is fitted again

[measure]
# An opportunity counts for a lead when created within this many days after it (one that names
# the lead in its lead_id always counts). Leads younger than this are still open.
window_days = 90
# Share of EQLs that get no motion (a stable draw by lead id), so the report can measure the
# motion's lift against them. 0 means no holdout.
holdout_share = 0.0

[import]
# CSV files: the delimiter (, ; tab |) is found from the header, UTF-8 and UTF-16 files with a
# byte-order mark are recognised, and headers match after folding case, spaces and punctuation
# ("Partner Account ID" is partner_account_id). Files without a byte-order mark are read as:
encoding = "utf-8"        # e.g. "cp1252" for files saved by older Windows tools
# Dates are ISO 8601 (2026-11-10) unless you name how yours are written; a date such as
# 11/10/2026 is never guessed. One of "MM/DD/YYYY", "DD/MM/YYYY", "DD.MM.YYYY".
# date_format = "MM/DD/YYYY"
decimal = "."             # "," for European numbers (1.234,5); thousands separators are fine

[web]
# Show opportunity amounts to partner users in the portal.
share_amounts = false
# A page asked for again within this many seconds, with its data unchanged, is sent again as
# it was (per user and session); 0 renders every request anew.
page_cache_seconds = 5

[share]
# Guards of the private sync (doorstep share sync --private) against probing.
max_message_age_seconds = 300
min_set_size = 20
max_syncs_per_day = 10
min_set_change = 5

# What each partner may see of each population of ours: hidden (the default), counts,
# overlaps or full. The level in force is the weaker of ours and the partner's own.
# [sharing.P01]
# customers = "overlaps"
# open_opportunities = "overlaps"
# prospects = "counts"
# fields = ["name", "website", "country", "relationship"]

# Custom populations: filters on any column or attribute of our (or a partner's) accounts.
# [populations.enterprise]
# side = "ours"
# when = { employees = { min = 1000 }, industry = ["software", "fintech"] }
"""
