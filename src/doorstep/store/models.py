"""SQLAlchemy models: the workspace tables, and the state doorstep derives from them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base for every doorstep table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class _Imported:
    """Columns every imported table carries: extra file columns and a hash of the row."""

    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    row_hash: Mapped[str] = mapped_column(String(32))


# --- workspace tables (loaded by ingest) -------------------------------------------------


class Rep(_Imported, Base):
    __tablename__ = "reps"
    rep_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    territory: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool | None]


class Partner(_Imported, Base):
    __tablename__ = "partners"
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    partner_manager_id: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(Text)


class Account(_Imported, Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[str | None] = mapped_column(String(200))
    territory: Mapped[str | None] = mapped_column(Text)
    is_customer: Mapped[bool | None]


class PartnerAccount(_Imported, Base):
    __tablename__ = "partner_accounts"
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    relationship: Mapped[str] = mapped_column(String(20))
    website: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    partner_owner_email: Mapped[str | None] = mapped_column(Text)
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime)
    relationship_strength: Mapped[int | None] = mapped_column(Integer)
    contacts_engaged: Mapped[int | None] = mapped_column(Integer)
    customer_since: Mapped[date | None] = mapped_column(Date)


class SourceLead(_Imported, Base):
    """A lead from our own funnel (the workspace's `leads` table): MQLs, SQLs, events ..."""

    __tablename__ = "source_leads"
    lead_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_type: Mapped[str] = mapped_column(String(50), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    account_id: Mapped[str | None] = mapped_column(String(200), index=True)
    company: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    behavior_score: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[str | None] = mapped_column(String(200))


class Opportunity(_Imported, Base):
    __tablename__ = "opportunities"
    opportunity_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    stage: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    is_won: Mapped[bool | None]
    lead_id: Mapped[str | None] = mapped_column(String(200))


class WarmthAnswer(_Imported, Base):
    __tablename__ = "warmth_answers"
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    answered_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    answer: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(Text)


# --- import bookkeeping ------------------------------------------------------------------


class ImportRun(Base):
    __tablename__ = "imports"
    import_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


CELL_OUTCOME = "row loaded without this value"


class QuarantinedRow(Base):
    """A row the import refused, with where it was and why; replaced by every import."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(Integer, index=True)
    table_name: Mapped[str] = mapped_column(String(50))
    file: Mapped[str] = mapped_column(Text)
    row_number: Mapped[int] = mapped_column(Integer)
    column_name: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    # True: a bad optional value left out of a row that loaded; False: the row was refused
    row_loaded: Mapped[bool] = mapped_column(default=False, server_default=false())


# --- derived state (map, qualify, act, track) ----------------------------------------------


class Overlap(Base):
    """One of our accounts matched to one partner account, with how and how sure."""

    __tablename__ = "overlaps"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    relationship: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(30))
    probability: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mapped_at: Mapped[datetime] = mapped_column(DateTime)


class RelatedAccount(Base):
    """One of our accounts and a partner account of the same brand in another country with
    another website: shown as related, never an overlap, never qualified."""

    __tablename__ = "related_accounts"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    relationship: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(30))
    probability: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mapped_at: Mapped[datetime] = mapped_column(DateTime)


class Lead(Base):
    """A doorstep lead: one per our account with an overlap; an EQL or a candidate."""

    __tablename__ = "leads"
    lead_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    partner_id: Mapped[str | None] = mapped_column(String(200))
    partner_account_id: Mapped[str | None] = mapped_column(String(200))
    other_partners: Mapped[list[Any] | None] = mapped_column(JSON)
    failed_gates: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    gates: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warmth_score: Mapped[float | None] = mapped_column(Float)
    fit_score: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[str | None] = mapped_column(String(200), index=True)
    action: Mapped[str | None] = mapped_column(String(30))
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class LeadEvent(Base):
    """One transition in a lead's life; append-only, the lead's state derives from it."""

    __tablename__ = "lead_events"
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Delivery(Base):
    """A message in the durable outbox; the idempotency key makes re-runs safe."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("idempotency_key"), Index("ix_deliveries_status", "status"))
    delivery_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(30))
    recipient: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(30))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


IMPORTED_MODELS: dict[str, type[Base]] = {
    "reps": Rep,
    "partners": Partner,
    "accounts": Account,
    "partner_accounts": PartnerAccount,
    "leads": SourceLead,
    "opportunities": Opportunity,
    "warmth_answers": WarmthAnswer,
}


class WarmthRequest(Base):
    """A warmth check put to a partner about one of its accounts; one per partner account."""

    __tablename__ = "warmth_requests"
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    lead_id: Mapped[str] = mapped_column(String(200))
    warmth_score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)


# The outbox worker claims by status and due time (act stage).
Index("ix_deliveries_due", Delivery.status, Delivery.next_attempt_at)


# --- web app: users, API tokens, and the indexes its pages read by ----------------------------


class StageLock(Base):
    """A row a writing stage updates first in its transaction: the row lock it then holds until
    commit makes a second run of the stage wait, then read what the first one wrote."""

    __tablename__ = "stage_locks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    held_at: Mapped[datetime] = mapped_column(DateTime)


class User(Base):
    """Someone who signs in to the web app: one role, and for reps and partners their scope."""

    __tablename__ = "users"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    partner_id: Mapped[str | None] = mapped_column(String(200), index=True)
    rep_id: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # Changing it (a new password, a deactivation) ends every session signed with the old one.
    session_stamp: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


class SignInThrottle(Base):
    """Failed sign-ins from one client: against one email (`email` set) or against any (`email`
    empty). Past a limit that client is refused until `locked_until`; other clients are not."""

    __tablename__ = "sign_in_throttle"
    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class ApiToken(Base):
    """A user's API token, kept only as its SHA-256 hash; the token itself is shown once."""

    __tablename__ = "api_tokens"
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


# A partner's leads newest first, a rep's queue by due date, overdue motions, a partner's overlaps.
Index("ix_leads_partner_updated", Lead.partner_id, Lead.updated_at, Lead.lead_id)
Index("ix_leads_owner_due", Lead.owner_id, Lead.due_at, Lead.lead_id)
Index("ix_leads_status_due", Lead.status, Lead.due_at, Lead.lead_id)
Index("ix_overlaps_partner", Overlap.partner_id, Overlap.partner_account_id)
# The leads list: sorted by any of these columns, a page at a time; accounts by name prefix.
for _column in ("due_at", "updated_at", "created_at", "warmth_score", "fit_score"):
    Index(f"ix_leads_by_{_column}", getattr(Lead, _column), Lead.lead_id)
Index("ix_accounts_name_lower", func.lower(Account.name))


# --- partner exchange ----------------------------------------------------------------------


class PartnerLink(Base):
    """Another doorstep install we exchange with: its public key, address and declared levels."""

    __tablename__ = "partner_links"
    partner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    their_levels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    linked_at: Mapped[datetime] = mapped_column(DateTime)
    bundle_id: Mapped[str | None] = mapped_column(String(64))
    bundle_at: Mapped[datetime | None] = mapped_column(DateTime)


class ShareNonce(Base):
    """A signed message's nonce, kept so that a replay of it is refused."""

    __tablename__ = "share_nonces"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class ShareAudit(Base):
    """One exchange with a partner install: what kind, its outcome, counts only, never records."""

    __tablename__ = "share_audit"
    __table_args__ = (Index("ix_share_audit_partner_at", "partner_id", "at"),)
    audit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
