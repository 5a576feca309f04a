"""The lead event log: every transition in a lead's life, appended, never changed.

Every stage that moves a lead writes here, so the log lives in the store, below the stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from doorstep.store.bulk import bulk_write, table_of
from doorstep.store.models import LeadEvent

_EVENT_COLUMNS = ("lead_id", "kind", "from_status", "to_status", "actor", "at", "detail")


@dataclass(frozen=True)
class Event:
    """One transition of one lead: what happened, from which status to which, who, when."""

    lead_id: str
    kind: str
    to_status: str | None
    actor: str
    at: datetime
    from_status: str | None = None
    detail: dict[str, Any] | None = None
    event_id: int | None = None


def record_events(conn: Connection, events: Iterable[Event]) -> int:
    """Append events to the log in the caller's transaction; returns how many were written."""
    rows = [{name: getattr(e, name) for name in _EVENT_COLUMNS} for e in events]
    return bulk_write(conn, table_of(LeadEvent), rows)


def lead_history(conn: Connection, lead_id: str) -> list[Event]:
    """Every event of one lead, oldest first."""
    rows = conn.execute(
        select(LeadEvent)
        .where(LeadEvent.lead_id == lead_id)
        .order_by(LeadEvent.at, LeadEvent.event_id)
    )
    return [
        Event(
            lead_id=r.lead_id,
            kind=r.kind,
            to_status=r.to_status,
            actor=r.actor,
            at=r.at,
            from_status=r.from_status,
            detail=r.detail,
            event_id=r.event_id,
        )
        for r in rows
    ]


def status_from_history(history: Sequence[Event]) -> str | None:
    """A lead's current status as its history tells it: the last status it moved to."""
    for event in reversed(history):
        if event.to_status is not None:
            return event.to_status
    return None
