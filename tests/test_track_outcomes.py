"""Tracking routed leads to opportunity, won or lost from the CRM, and expiring forgotten ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from test_act_stage import NOW, build_act_workspace, insert_world
from typer.testing import CliRunner

from doorstep.act import accept_lead, act
from doorstep.cli import app
from doorstep.store.models import Delivery, Lead, LeadEvent, Opportunity
from doorstep.track.outcomes import ACTOR, track_outcomes
from doorstep.workspace import Workspace

DAY = timedelta(days=1)


@pytest.fixture
def routed(tmp_path: Path, store_url: str) -> Iterator[Workspace]:
    """The act world after act: L-a1 and L-a2 routed (created NOW - 1 day), L-a3 no motion."""
    workspace = build_act_workspace(tmp_path / "ws", store_url)
    act(workspace, now=NOW, send=False)
    yield workspace
    workspace.store.engine.dispose()


def status(workspace: Workspace) -> dict[str, str]:
    with workspace.store.engine.connect() as conn:
        return {r.lead_id: r.status for r in conn.execute(select(Lead.lead_id, Lead.status))}


def opportunity(opportunity_id: str, account_id: str, created_at: datetime, **more: Any,
                ) -> dict[str, Any]:
    return {"opportunity_id": opportunity_id, "account_id": account_id,
            "created_at": created_at, **more}


def test_an_opportunity_on_the_account_moves_the_lead_then_its_win(routed: Workspace) -> None:
    insert_world(routed, {"opportunities": [
        opportunity("o1", "a1", NOW + 2 * DAY),
        opportunity("o0", "a2", NOW - 30 * DAY),  # before the lead: not the lead's doing
    ]})
    report = track_outcomes(routed, now=NOW + 3 * DAY)
    assert report.moved == {"opportunity": 1}
    assert status(routed)["L-a1"] == "opportunity"
    assert status(routed)["L-a2"] == "routed"
    with routed.store.engine.connect() as conn:
        event = conn.execute(select(LeadEvent).where(LeadEvent.lead_id == "L-a1",
                                                     LeadEvent.kind == "opportunity")).one()
    assert (event.from_status, event.to_status, event.actor) == ("routed", "opportunity", ACTOR)
    assert event.detail == {"opportunities": ["o1"]}
    # nothing new: nothing moves, no event is written twice
    assert track_outcomes(routed, now=NOW + 4 * DAY).moved == {}
    with routed.store.engine.begin() as conn:
        conn.execute(update(Opportunity).where(Opportunity.opportunity_id == "o1")
                     .values(is_won=True, closed_at=NOW + 20 * DAY))
    # three weeks on, the other two leads, never taken on, have expired meanwhile
    assert track_outcomes(routed, now=NOW + 21 * DAY).moved["won"] == 1
    assert status(routed)["L-a1"] == "won"


def test_all_opportunities_closed_lost_make_the_lead_lost(routed: Workspace) -> None:
    insert_world(routed, {"opportunities": [
        opportunity("o2", "a2", NOW + DAY, is_won=False, closed_at=NOW + 9 * DAY),
        opportunity("o3", "a2", NOW + 2 * DAY, is_won=False, closed_at=NOW + 9 * DAY),
        opportunity("o4", "a1", NOW + DAY, is_won=False, closed_at=NOW + 9 * DAY),
        opportunity("o5", "a1", NOW + 2 * DAY),  # still open
    ]})
    track_outcomes(routed, now=NOW + 10 * DAY)
    assert status(routed)["L-a2"] == "lost"
    assert status(routed)["L-a1"] == "opportunity"


def test_an_opportunity_naming_the_lead_counts_whenever_it_was_created(routed: Workspace) -> None:
    insert_world(routed, {"opportunities": [
        opportunity("o6", "a9", NOW - 100 * DAY, lead_id="L-a2", is_won=True,
                    closed_at=NOW),
    ]})
    track_outcomes(routed, now=NOW + DAY)
    assert status(routed)["L-a2"] == "won"


def test_a_routed_lead_nobody_took_on_expires_and_its_messages_are_dropped(
    routed: Workspace,
) -> None:
    accept_lead(routed, "L-a2", now=NOW + DAY)
    with routed.store.engine.connect() as conn:
        due = conn.execute(select(Lead.due_at).where(Lead.lead_id == "L-a1")).scalar_one()
    grace = timedelta(days=routed.config.act.expire_after_days)
    assert track_outcomes(routed, now=due + grace - DAY).moved == {}
    report = track_outcomes(routed, now=due + grace + DAY)
    assert status(routed)["L-a1"] == "expired"
    assert status(routed)["L-a2"] == "accepted"  # taken on: it does not expire
    assert report.moved.get("expired", 0) >= 1
    with routed.store.engine.connect() as conn:
        pending = conn.execute(select(Delivery.status).where(Delivery.lead_id == "L-a1")).all()
    assert pending and all(s != "pending" for (s,) in pending)


def test_doorstep_track_prints_what_moved(routed: Workspace) -> None:
    insert_world(routed, {"opportunities": [opportunity("o7", "a1", datetime.now() - DAY)]})
    with routed.store.engine.begin() as conn:
        conn.execute(update(Lead).where(Lead.lead_id == "L-a1")
                     .values(created_at=datetime.now() - 2 * DAY))
    result = CliRunner().invoke(app, ["track", str(routed.path)])
    assert result.exit_code == 0, result.output
    assert "1 to opportunity" in result.stdout
