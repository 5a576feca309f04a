"""Populations and the sharing policy: the one place that decides what a partner may see.

A population is a saved filter over accounts. Ours default to customers, open_opportunities
and prospects (each of our accounts is in exactly one of these); a partner's default to its
relationship (customer, opportunity, prospect). `[populations.NAME]` adds filters on any column
or attribute, with the same conditions as routing rules.

`[sharing.PARTNER]` sets a level per population of ours: hidden < counts < overlaps < full
(hidden by default). Dual opt-in: the level in force is the weaker of ours and the level the
partner declared for the same population, so a side sees at most what it shares in return.
`visibility` computes it; every surface that shows a partner anything asks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, exists, false, or_, select, true

from doorstep.config import SHARING_LEVELS, Config
from doorstep.qualify.motion import conditions_mismatch
from doorstep.store.models import Account, Opportunity, Overlap, PartnerAccount, PartnerLink

HIDDEN, COUNTS, OVERLAPS, FULL = SHARING_LEVELS
CUSTOMERS, OPEN_OPPORTUNITIES, PROSPECTS = "customers", "open_opportunities", "prospects"
OUR_DEFAULTS = (CUSTOMERS, OPEN_OPPORTUNITIES, PROSPECTS)
# A partner's default populations, by the relationship it has with the account.
PARTNER_DEFAULTS = {"customer": CUSTOMERS, "opportunity": OPEN_OPPORTUNITIES,
                    "prospect": PROSPECTS}
_ACCOUNT_COLUMNS = ("account_id", "name", "website", "country", "industry", "employees",
                    "annual_revenue", "owner_id", "territory", "is_customer")


def weaker(a: str, b: str) -> str:
    """The weaker of two sharing levels."""
    return SHARING_LEVELS[min(SHARING_LEVELS.index(a), SHARING_LEVELS.index(b))]


def at_least(level: str, floor: str) -> bool:
    """Whether `level` shows at least as much as `floor`."""
    return SHARING_LEVELS.index(level) >= SHARING_LEVELS.index(floor)


def population_names(config: Config, side: str = "ours") -> list[str]:
    """Every population of one side: the defaults, then the custom ones in file order."""
    custom = [name for name, p in config.populations.items() if p.side == side]
    return [*OUR_DEFAULTS, *(n for n in custom if n not in OUR_DEFAULTS)]


def _custom(config: Config, side: str, facts: Mapping[str, Any]) -> list[str]:
    return [
        name for name, p in config.populations.items()
        if p.side == side and name not in OUR_DEFAULTS
        and conditions_mismatch(facts, p.when) is None
    ]


def our_populations(conn: Connection, config: Config) -> dict[str, list[str]]:
    """Each of our accounts' populations: one default (customer, else open opportunity, else
    prospect), then every custom population whose filter it meets."""
    open_accounts = set(
        conn.execute(select(Opportunity.account_id).where(Opportunity.closed_at.is_(None)))
        .scalars()
    )
    custom = any(p.side == "ours" for p in config.populations.values())
    columns = [getattr(Account, c) for c in _ACCOUNT_COLUMNS]
    if custom:
        columns.append(Account.attributes)
    found: dict[str, list[str]] = {}
    for row in conn.execute(select(*columns)):
        values = dict(zip(_ACCOUNT_COLUMNS, row, strict=False))
        account_id = values["account_id"]
        default = (
            CUSTOMERS if values["is_customer"]
            else OPEN_OPPORTUNITIES if account_id in open_accounts else PROSPECTS
        )
        names = [default]
        if custom:
            facts = {**dict(row[-1] or {}), **values}
            names += _custom(config, "ours", facts)
        found[account_id] = names
    return found


def partner_record_populations(config: Config, record: Mapping[str, Any]) -> list[str]:
    """A partner account's populations: its relationship's default, then custom ones."""
    default = PARTNER_DEFAULTS.get(str(record.get("relationship") or "").strip().lower())
    names = [default] if default else []
    facts = {**dict(record.get("attributes") or {}), **record}
    return names + _custom(config, "partner", facts)


@dataclass(frozen=True)
class Visibility:
    """What one partner may see of our accounts: the level in force per population, the
    fields that `overlaps` reveals, and both sides' levels that made it."""

    partner_id: str
    levels: dict[str, str]
    fields: tuple[str, ...]
    ours: dict[str, str] = field(default_factory=dict)
    theirs: dict[str, str] | None = None

    def level(self, population: str) -> str:
        """The level in force for one population of ours."""
        return self.levels.get(population, HIDDEN)

    def level_of(self, populations: Iterable[str]) -> str:
        """The level for an account in these populations: the strongest one in force among
        them (a population shared explicitly shows its members)."""
        best = HIDDEN
        for name in populations:
            level = self.level(name)
            if SHARING_LEVELS.index(level) > SHARING_LEVELS.index(best):
                best = level
        return best

    @property
    def shares_anything(self) -> bool:
        return any(level != HIDDEN for level in self.levels.values())


def visibility(
    config: Config, partner_id: str, theirs: Mapping[str, str] | None, *,
    file_partner: bool = False,
) -> Visibility:
    """The level in force per population for one partner: the weaker of ours and theirs.

    `theirs` is what the partner declared for the same populations (from its linked install);
    a `file_partner` (one that handed over its whole list as a file, no link) declared
    everything `full`, so only our own levels limit what it sees.
    """
    policy = config.sharing.get(partner_id)
    ours = policy.levels() if policy is not None else {}
    names = set(population_names(config)) | set(ours)
    declared = {str(k): str(v) for k, v in (theirs or {}).items()}
    levels = {}
    for name in names:
        their = FULL if file_partner else declared.get(name, HIDDEN)
        levels[name] = weaker(ours.get(name, HIDDEN), their if their in SHARING_LEVELS else HIDDEN)
    fields = tuple(policy.fields) if policy is not None else ()
    return Visibility(partner_id, levels, fields, ours, None if file_partner else declared)


def partner_visibility(conn: Connection, config: Config, partner_id: str) -> Visibility:
    """`visibility` for a partner as the store knows it: linked (its declared levels) or not."""
    link = conn.execute(
        select(PartnerLink.their_levels).where(PartnerLink.partner_id == partner_id)
    ).first()
    if link is None:
        return visibility(config, partner_id, None, file_partner=True)
    return visibility(config, partner_id, dict(link[0] or {}))


def declared_levels(config: Config, partner_id: str) -> dict[str, str]:
    """The levels we declare to a partner (what we are willing to share), for its side's
    dual opt-in."""
    policy = config.sharing.get(partner_id)
    return policy.levels() if policy is not None else {}


def _default_population(name: str) -> Any:
    """The SQL condition on Account for one default population of ours."""
    open_opportunity = exists(
        select(Opportunity.opportunity_id).where(
            Opportunity.account_id == Account.account_id, Opportunity.closed_at.is_(None))
    )
    customer = Account.is_customer.is_(True)
    if name == CUSTOMERS:
        return customer
    not_customer = or_(Account.is_customer.is_(None), Account.is_customer.is_(False))
    if name == OPEN_OPPORTUNITIES:
        return and_(not_customer, open_opportunity)
    return and_(not_customer, ~open_opportunity)


def visible_clause(
    conn: Connection,
    config: Config,
    partner_id: str,
    account_column: Any,
    floor: str,
    *,
    vis: Visibility | None = None,
) -> Any:
    """An SQL condition on `account_column` (one of our account ids): true for the accounts
    this partner may see at `floor` or more. Every partner-facing read filters by it.

    `vis` is the partner's `partner_visibility`, when the caller has read it already.
    """
    if vis is None:
        vis = partner_visibility(conn, config, partner_id)
    shown = [name for name in OUR_DEFAULTS if at_least(vis.level(name), floor)]
    if len(shown) == len(OUR_DEFAULTS):
        return true()  # the defaults hold every account: nothing is left out
    conditions = [_default_population(name) for name in shown]
    custom = [name for name, p in config.populations.items()
              if p.side == "ours" and name not in OUR_DEFAULTS and at_least(vis.level(name), floor)]
    if custom:  # custom filters run in Python, once per read
        wanted = set(custom)
        ids = [a for a, names in our_populations(conn, config).items() if wanted & set(names)]
        conditions.append(Account.account_id.in_(ids) if ids else false())
    if not conditions:
        return false()
    # A correlated lookup by key, not `IN (every visible account)`: a page of 50 leads then
    # checks 50 accounts, instead of listing all of ours on every request.
    return exists(
        select(Account.account_id)
        .where(Account.account_id == account_column, or_(*conditions))
        .correlate_except(Account)
    )


def sees_all(
    conn: Connection, config: Config, partner_id: str, floor: str, *, vis: Visibility | None = None
) -> bool:
    """Whether the partner may see every account of ours at `floor` or above."""
    if vis is None:
        vis = partner_visibility(conn, config, partner_id)
    return all(at_least(vis.level(name), floor) for name in OUR_DEFAULTS)


def partner_population_names(config: Config) -> list[str]:
    """A partner's populations: its relationship's default, then custom partner populations."""
    return population_names(config, "partner")


@dataclass(frozen=True)
class OverlapMatrix:
    """Per partner: overlapping accounts by our population (rows) × its population (columns).

    An account in several populations (a custom one beside its default) counts in each.
    """

    ours: list[str]
    theirs: list[str]
    cells: dict[str, dict[tuple[str, str], int]]

    def __bool__(self) -> bool:
        return bool(self.cells)


def overlap_matrix(workspace: Any) -> OverlapMatrix:
    """The overlap matrix of every partner, counted once per our account and cell."""
    config = workspace.config
    with workspace.store.engine.connect() as conn:
        ours = our_populations(conn, config)
        o, pa = Overlap, PartnerAccount
        rows = conn.execute(
            select(o.partner_id, o.account_id, o.relationship, pa.name, pa.website, pa.country,
                   pa.attributes)
            .join(pa, (pa.partner_id == o.partner_id)
                  & (pa.partner_account_id == o.partner_account_id), isouter=True)
        ).all()
    seen: dict[str, dict[tuple[str, str], set[str]]] = {}
    for pid, account_id, relationship, name, website, country, attributes in rows:
        theirs = partner_record_populations(config, {
            "relationship": relationship, "name": name, "website": website,
            "country": country, "attributes": attributes,
        })
        cells = seen.setdefault(pid, {})
        for mine in ours.get(account_id, [PROSPECTS]):
            for their in theirs:
                cells.setdefault((mine, their), set()).add(account_id)
    return OverlapMatrix(
        population_names(config, "ours"),
        partner_population_names(config),
        {pid: {cell: len(ids) for cell, ids in cells.items()} for pid, cells in seen.items()},
    )


def write_matrix_csv(matrix: OverlapMatrix, out: Any) -> int:
    """The overlap matrix as CSV: partner, our population, then one column per theirs."""
    import csv

    from doorstep.store.export import csv_cell

    writer = csv.writer(out)
    writer.writerow(["partner_id", "our_population", *map(csv_cell, matrix.theirs)])
    rows = 0
    for partner_id in sorted(matrix.cells):
        for population in matrix.ours:
            writer.writerow([csv_cell(partner_id), csv_cell(population),
                             *(matrix.cells[partner_id].get((population, t), 0)
                               for t in matrix.theirs)])
            rows += 1
    return rows
