"""The lead event log: appended in bulk, read back in order, the status derived from it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from doorstep.store import Store
from doorstep.store.bulk import bulk_write, table_of
from doorstep.store.models import Lead, LeadEvent
from doorstep.track import Event, lead_history, record_events, status_from_history

T0 = datetime(2026, 11, 1, 9, 30, 15, 123456)


def event(
    lead_id: str,
    to_status: str | None,
    minutes: int,
    kind: str = "status_changed",
    from_status: str | None = None,
    detail: dict[str, object] | None = None,
) -> Event:
    at = T0 + timedelta(minutes=minutes)
    return Event(lead_id, kind, to_status, "tester", at, from_status, detail)


def test_history_comes_back_oldest_first_with_every_field(store: Store) -> None:
    events = [
        event("L-a1", "eql", 10, from_status="warmth_requested", detail={"why": ["strong"]}),
        event("L-a1", "warmth_requested", 0, kind="created"),
        event("L-a2", "candidate", 5, kind="created"),
    ]
    with store.engine.begin() as conn:
        assert record_events(conn, events) == 3
    with store.engine.connect() as conn:
        history = lead_history(conn, "L-a1")
    assert [(e.kind, e.from_status, e.to_status) for e in history] == [
        ("created", None, "warmth_requested"),
        ("status_changed", "warmth_requested", "eql"),
    ]
    assert history[1].at == T0 + timedelta(minutes=10)  # microseconds survive the round trip
    assert history[1].detail == {"why": ["strong"]}
    assert history[1].actor == "tester" and history[1].event_id is not None


def test_the_current_status_is_the_last_status_moved_to(store: Store) -> None:
    with store.engine.begin() as conn:
        record_events(
            conn,
            [
                event("L-a1", "candidate", 0, kind="created"),
                event("L-a1", "eql", 1),
                event("L-a1", None, 2, kind="note"),
            ],
        )
    with store.engine.connect() as conn:
        assert status_from_history(lead_history(conn, "L-a1")) == "eql"
    assert status_from_history([]) is None


def test_recording_appends_and_never_replaces(store: Store) -> None:
    with store.engine.begin() as conn:
        record_events(conn, [event("L-a1", "candidate", 0)])
        record_events(conn, [event("L-a1", "candidate", 0)])
        assert record_events(conn, []) == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LeadEvent)).scalar_one() == 2


def test_events_are_written_in_the_callers_transaction(store: Store) -> None:
    try:
        with store.engine.begin() as conn:
            record_events(conn, [event("L-a1", "candidate", 0)])
            raise RuntimeError("the stage failed after writing")
    except RuntimeError:
        pass
    with store.engine.connect() as conn:
        assert lead_history(conn, "L-a1") == []


def test_bulk_write_inserts_then_updates_by_key(store: Store) -> None:
    row = {
        "lead_id": "L-a1", "account_id": "a1", "status": "candidate", "gates": {"fit": {"ok": 1}},
        "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    with store.engine.begin() as conn:
        bulk_write(conn, table_of(Lead), [row])
        bulk_write(
            conn,
            table_of(Lead),
            [{"lead_id": "L-a1", "status": "eql", "due_at": T0 + timedelta(days=3)}],
            key=("lead_id",),
        )
    with store.engine.connect() as conn:
        lead = conn.execute(select(Lead)).one()
    assert (lead.status, lead.gates, lead.created_at) == ("eql", {"fit": {"ok": 1}}, T0)
    assert lead.due_at == T0 + timedelta(days=3)
