"""Rep actions from the CLI follow the web app's rules: a named rep, acting on their own leads."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from test_web_auth import quick_hashes, world  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from doorstep.cli import app as cli
from doorstep.store.models import Lead, LeadEvent
from doorstep.web.auth import remove_user
from doorstep.workspace import Workspace


def routed_lead(world: Workspace, rep_id: str) -> str:  # noqa: F811
    with world.store.engine.connect() as conn:
        lead = conn.execute(select(Lead.lead_id).where(
            Lead.owner_id == rep_id, Lead.status == "routed").order_by(Lead.lead_id)).first()
    assert lead is not None
    return str(lead[0])


def status_of(world: Workspace, lead_id: str) -> str:  # noqa: F811
    with world.store.engine.connect() as conn:
        return str(conn.execute(select(Lead.status).where(Lead.lead_id == lead_id)).scalar_one())


def test_the_owner_accepts_by_their_user_email(world: Workspace) -> None:  # noqa: F811
    lead = routed_lead(world, "r1")
    result = CliRunner().invoke(cli, ["lead", "accept", str(world.path), lead,
                                      "--as", "ADA@example.com"])
    assert result.exit_code == 0, result.output
    assert f"{lead}: routed -> accepted by r1" in result.output
    assert status_of(world, lead) == "accepted"


@pytest.mark.parametrize("email,says", [
    ("random@nowhere.com", "no user or rep has the email random@nowhere.com"),
    ("bea@example.com", "not to r2: only the rep a lead is routed to may act on it"),
    ("pm@example.com", "is a partner manager user: only the rep"),
    ("kim@cloudway.example", "is a partner user"),
])
def test_anyone_else_is_refused_and_nothing_changes(
    world: Workspace, email: str, says: str  # noqa: F811
) -> None:
    lead = routed_lead(world, "r1")
    with world.store.engine.connect() as conn:
        events = len(conn.execute(select(LeadEvent.event_id)).all())
    for action in (["accept"], ["reject", "--reason", "bad_fit"], ["intro"]):
        result = CliRunner().invoke(cli, ["lead", action[0], str(world.path), lead,
                                          *action[1:], "--as", email])
        assert result.exit_code == 1, result.output
        assert says in " ".join(result.output.split())
    assert status_of(world, lead) == "routed"
    with world.store.engine.connect() as conn:
        assert len(conn.execute(select(LeadEvent.event_id)).all()) == events


def test_a_rep_without_a_user_acts_by_the_email_in_reps(
    world: Workspace  # noqa: F811
) -> None:
    remove_user(world.store, "bea@example.com")  # r2 is in reps.csv, with no web user
    lead = routed_lead(world, "r1")
    with world.store.engine.begin() as conn:
        conn.execute(update(Lead).where(Lead.lead_id == lead).values(owner_id="r2"))
    result = CliRunner().invoke(cli, ["lead", "reject", str(world.path), lead,
                                      "--reason", "bad_fit", "--as", "bea@example.com"])
    assert result.exit_code == 0, result.output
    assert status_of(world, lead) == "rejected"


def test_the_as_option_is_required(world: Workspace) -> None:  # noqa: F811
    result = CliRunner().invoke(cli, ["lead", "accept", str(world.path), "L-a1"])
    assert result.exit_code == 2 and "--as" in result.output
