"""The latest warmth answer, as every page and stage reads it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from doorstep.store import Store
from doorstep.store.models import Lead, WarmthAnswer
from doorstep.web.queries import lead_by_id

NOW = datetime(2026, 12, 1, 9, 0)


def test_each_lead_shows_its_own_latest_answer_whenever_it_was_given(store: Store) -> None:
    leads = [("L-1", "a1", "x1"), ("L-2", "a2", "x2"), ("L-3", "a3", "x3")]
    answers = [  # x1's newest answer is older than x2's: each must still be shown
        ("x1", datetime(2026, 11, 1), "none", "moved on"),
        ("x1", datetime(2026, 11, 5), "strong", "CIO is a friend"),
        ("x2", datetime(2026, 11, 20), "some", None),
        ("x2", datetime(2026, 11, 2), "strong", "old"),
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(Lead), [
            {"lead_id": lid, "account_id": aid, "status": "eql", "partner_id": "p1",
             "partner_account_id": xid, "created_at": NOW, "updated_at": NOW}
            for lid, aid, xid in leads
        ])
        conn.execute(insert(WarmthAnswer), [
            {"partner_id": "p1", "partner_account_id": xid, "answered_at": at, "answer": a,
             "note": note, "row_hash": f"h{i}"}
            for i, (xid, at, a, note) in enumerate(answers)
        ])
    with store.engine.connect() as conn:
        shown = {lid: lead_by_id(conn, lid, NOW) for lid, _, _ in leads}
    assert {lid: (v.answer, v.answer_note) for lid, v in shown.items() if v} == {
        "L-1": ("strong", "CIO is a friend"), "L-2": ("some", None), "L-3": (None, None),
    }
