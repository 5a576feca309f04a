"""Each sharing level through every partner-facing surface: portal, API, CSV and digest.

Partner p1 surfaced a1 (won) and a3 (routed) and has an open warmth check on x3. At `hidden`
it sees nothing of them, at `counts` only counts, at `overlaps` and `full` the records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_feedback import fresh_web_world
from test_web_auth import QUICK_HASHER, USERS, add_users, make_app, sign_in

from doorstep.config import CONFIG_FILE
from doorstep.feedback import partner_digest
from doorstep.web import auth
from doorstep.web.auth import issue_token
from doorstep.workspace import Workspace, open_workspace

P1_RECORDS = ("L-a1", "L-a3", "NORTHWIND", "REDROCK")
LEVELS = ("hidden", "counts", "overlaps", "full")


def at_level(workspace: Workspace, level: str) -> Workspace:
    """The workspace reopened with p1 at `level` for every population (p2 at overlaps)."""
    folder = workspace.path
    text = (folder / CONFIG_FILE).read_text(encoding="utf-8")
    head = text[: text.index("[sharing.")]
    policy = "".join(
        f'[sharing.{pid}]\ncustomers = "{lvl}"\nopen_opportunities = "{lvl}"\n'
        f'prospects = "{lvl}"\n\n'
        for pid, lvl in (("p1", level), ("p2", "overlaps"))
    )
    (folder / CONFIG_FILE).write_text(head + policy, encoding="utf-8")
    workspace.store.engine.dispose()
    return open_workspace(folder)


@pytest.fixture
def world(tmp_path: Path, store_url: str, tmp_path_factory: pytest.TempPathFactory,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setattr(auth, "_hasher", QUICK_HASHER)
    workspace = fresh_web_world(tmp_path / "ws", store_url, tmp_path_factory.getbasetemp(),
                                setup=add_users)
    yield workspace
    workspace.store.engine.dispose()


def partner_bodies(workspace: Workspace) -> dict[str, str]:
    """What partner p1's user gets from every partner-facing route."""
    email = USERS["partner"][0]
    token = issue_token(workspace.store, email)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(make_app(workspace)) as client:
        sign_in(client, email)
        bodies = {url: client.get(url).text for url in ("/portal", "/portal/outcomes.csv")}
        for url in ("/api/leads", "/api/leads/L-a1", "/api/warmth-checks?status=all",
                    "/api/overlaps", "/api/partners/p1/scorecard"):
            bodies[url] = client.get(url, headers=headers).text
    return bodies


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_shows_a_partner_exactly_what_it_allows(world: Workspace, level: str) -> None:
    workspace = at_level(world, level)
    bodies = partner_bodies(workspace)
    digest = partner_digest(workspace, "p1")
    records_shown = level in ("overlaps", "full")
    for url, body in bodies.items():
        if url in ("/api/partners/p1/scorecard", "/api/leads/L-a1"):
            continue  # the card has counts; the 404 names the id the partner asked for
        for text in P1_RECORDS:
            if not records_shown:
                assert text not in body, f"{text} reached {url} at {level}"
    eql = digest.scorecard.line("eql").count
    assert eql == (0 if level == "hidden" else 2)  # counts and up: the count, never the record
    if records_shown:
        assert "NORTHWIND" in bodies["/api/overlaps"] and "L-a3" in bodies["/api/leads"]
        assert {lead.lead_id for lead in digest.leads} == {"L-a1", "L-a3"}
    else:
        assert digest.leads == []
        assert '"items":[]' in bodies["/api/leads"].replace(" ", "")
        assert "404" in bodies["/api/leads/L-a1"] or "no lead" in bodies["/api/leads/L-a1"]
    workspace.store.engine.dispose()


def test_a_partner_never_sees_more_than_it_shares_in_return(world: Workspace) -> None:
    from doorstep.share.policy import partner_visibility

    workspace = at_level(world, "full")
    with workspace.store.engine.connect() as conn:
        # a file partner (no linked install) handed over everything: ours alone limits it
        assert partner_visibility(conn, workspace.config, "p1").level("customers") == "full"
        assert partner_visibility(conn, workspace.config, "p3").level("customers") == "hidden"
    workspace.store.engine.dispose()
