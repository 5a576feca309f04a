"""The workspace data contract: every table, its columns, their types and references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "integer", "number", "boolean", "date", "datetime", "enum", "email"]


@dataclass(frozen=True)
class Column:
    """One column of a workspace table."""

    name: str
    type: ColumnType = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    references: tuple[str, str] | None = None  # (table, column) this value must exist in
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """One workspace table: a file under data/ and a table in the store."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    doc: str = ""
    composite_references: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = field(
        default=()
    )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


RELATIONSHIPS = ("customer", "opportunity", "prospect")
ANSWERS = ("strong", "some", "none")

TABLES: tuple[Table, ...] = (
    Table(
        "reps",
        key=("rep_id",),
        doc="Our sales reps: who can own a lead.",
        columns=(
            Column("rep_id", required=True),
            Column("name", required=True),
            Column("email", "email", required=True),
            Column("territory"),
            Column("capacity", "integer", minimum=0, doc="open leads this rep can take"),
            Column("active", "boolean"),
        ),
    ),
    Table(
        "partners",
        key=("partner_id",),
        doc="Our partners: who may share accounts with us.",
        columns=(
            Column("partner_id", required=True),
            Column("name", required=True),
            Column("partner_manager_id", references=("reps", "rep_id")),
            Column("contact_email", "email"),
        ),
    ),
    Table(
        "accounts",
        key=("account_id",),
        doc="Our CRM accounts.",
        columns=(
            Column("account_id", required=True),
            Column("name", required=True),
            Column("website"),
            Column("country"),
            Column("industry"),
            Column("employees", "integer", minimum=0),
            Column("annual_revenue", "number", minimum=0),
            Column("owner_id", references=("reps", "rep_id")),
            Column("territory"),
            Column("is_customer", "boolean"),
        ),
    ),
    Table(
        "partner_accounts",
        key=("partner_id", "partner_account_id"),
        doc="Each partner's accounts and its relationship with them.",
        columns=(
            Column("partner_id", required=True, references=("partners", "partner_id")),
            Column("partner_account_id", required=True),
            Column("name", required=True),
            Column("relationship", "enum", required=True, choices=RELATIONSHIPS),
            Column("website"),
            Column("country"),
            Column("partner_owner_email", "email"),
            Column("last_activity_at", "datetime"),
            Column("relationship_strength", "integer", minimum=1, maximum=5),
            Column("contacts_engaged", "integer", minimum=0),
            Column("customer_since", "date"),
        ),
    ),
    Table(
        "leads",
        key=("lead_id",),
        doc="Leads from our funnel (MQLs, SQLs, events, past partner leads ...).",
        columns=(
            Column("lead_id", required=True),
            Column("source_type", required=True, doc="mql, sql, event, eql, ..."),
            Column("created_at", "datetime", required=True),
            Column("account_id", references=("accounts", "account_id")),
            Column("company"),
            Column("website"),
            Column("behavior_score", "number"),
            Column("owner_id", references=("reps", "rep_id")),
        ),
    ),
    Table(
        "opportunities",
        key=("opportunity_id",),
        doc="Opportunities from our CRM.",
        columns=(
            Column("opportunity_id", required=True),
            Column("account_id", required=True, references=("accounts", "account_id")),
            Column("created_at", "datetime", required=True),
            Column("stage"),
            Column("amount", "number", minimum=0),
            Column("closed_at", "datetime"),
            Column("is_won", "boolean"),
            Column("lead_id", references=("leads", "lead_id")),
        ),
    ),
    Table(
        "warmth_answers",
        key=("partner_id", "partner_account_id", "answered_at"),
        doc="Partners' answers to 'can you introduce us?'.",
        columns=(
            Column("partner_id", required=True, references=("partners", "partner_id")),
            Column("partner_account_id", required=True),
            Column("answer", "enum", required=True, choices=ANSWERS),
            Column("answered_at", "datetime", required=True),
            Column("note"),
            Column("answered_by"),
        ),
        composite_references=(
            (
                ("partner_id", "partner_account_id"),
                "partner_accounts",
                ("partner_id", "partner_account_id"),
            ),
        ),
    ),
)

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
