"""Serving at load: pages sent again while their data is unchanged, the dashboard's numbers
shared by the server's processes, and `doorstep serve --workers N` on one port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update
from test_act_channels import free_port
from test_web_auth import make_app, quick_hashes, sign_in, world  # noqa: F401 (fixtures)

from doorstep.feedback.warmth import answer_warmth_check
from doorstep.store.models import LeadEvent, PartnerLink, StageLock, WarmthRequest
from doorstep.store.queries import data_stamp
from doorstep.web.snapshot import Snapshot, SnapshotCache, compute_snapshot
from doorstep.workspace import Workspace


def stamp(workspace: Workspace) -> tuple[object, ...]:
    with workspace.store.engine.connect() as conn:
        return data_stamp(conn)


def test_the_data_stamp_moves_with_every_kind_of_change(world: Workspace) -> None:  # noqa: F811
    seen = [stamp(world)]
    with world.store.engine.begin() as conn:
        conn.execute(insert(LeadEvent).values(lead_id="L-a1", kind="note", actor="test",
                                              at=datetime(2026, 12, 1)))
    seen.append(stamp(world))
    with world.store.engine.begin() as conn:
        conn.execute(insert(StageLock).values(name="elsewhere", held_at=datetime(2030, 1, 1)))
    seen.append(stamp(world))
    with world.store.engine.connect() as conn:
        asked = conn.execute(
            WarmthRequest.__table__.select().where(WarmthRequest.partner_id == "p1")).first()
    assert asked is not None
    answer_warmth_check(world, "p1", asked.partner_account_id, "strong",
                        now=datetime(2031, 1, 1))
    seen.append(stamp(world))
    with world.store.engine.begin() as conn:
        conn.execute(insert(PartnerLink).values(partner_id="p1", public_key="k", url=None,
                                                their_levels={"customer": "counts"},
                                                linked_at=datetime(2026, 12, 1)))
    seen.append(stamp(world))
    with world.store.engine.begin() as conn:
        conn.execute(update(PartnerLink).values(their_levels={"customer": "hidden"}))
    seen.append(stamp(world))
    assert len(set(seen)) == len(seen), seen
    assert stamp(world) == seen[-1]  # and stands still while nothing changes


def test_a_page_asked_again_is_sent_again_until_its_data_changes(
    world: Workspace,  # noqa: F811
) -> None:
    app = make_app(world)
    with TestClient(app) as client:
        token = sign_in(client, "ada@example.com")
        pages = app.state.doorstep.pages
        first = client.get("/queue")
        again = client.get("/queue")
        assert again.text == first.text and pages.hits >= 1
        routed = first.text.count('class="accept"')
        assert routed > 0
        lead = first.text.split('action="/leads/')[1].split("/accept")[0]
        client.post(f"/leads/{lead}/accept", data={"csrf_token": token})
        after = client.get("/queue")
        assert after.text.count('class="accept"') == routed - 1  # rendered anew, not the copy


def test_each_user_gets_their_own_answer(world: Workspace) -> None:  # noqa: F811
    app = make_app(world)
    with TestClient(app) as ada, TestClient(app) as bea:
        sign_in(ada, "ada@example.com")
        sign_in(bea, "bea@example.com")
        for _ in range(2):
            mine, theirs = ada.get("/queue").text, bea.get("/queue").text
            assert mine != theirs


def test_with_the_cache_off_every_request_is_rendered(world: Workspace) -> None:  # noqa: F811
    app = make_app(world)
    app.state.doorstep.pages.max_age = 0
    with TestClient(app) as client:
        sign_in(client, "ada@example.com")
        client.get("/queue")
        client.get("/queue")
        assert app.state.doorstep.pages.hits == 0


def test_server_processes_share_the_dashboards_numbers(
    world: Workspace, tmp_path: Path  # noqa: F811
) -> None:
    computed: list[Snapshot] = []

    def counted(workspace: Workspace) -> Snapshot:
        computed.append(compute_snapshot(workspace))
        return computed[-1]

    folder = tmp_path / "snapshot"
    one = SnapshotCache(world, compute=counted, shared=folder)
    other = SnapshotCache(world, compute=counted, shared=folder)
    assert one.get(wait=60) is not None
    one.wait_idle()
    got = other.get(wait=60)
    other.wait_idle()
    assert got is not None and got.computed_at == computed[0].computed_at
    assert len(computed) == 1  # the second process read the first one's result
    other.invalidate()  # a change made through the second process
    assert one.get() is not None
    one.wait_idle()
    assert len(computed) == 2  # the first process saw the numbers stale and computed them


def test_numbers_past_their_time_are_brought_up_to_date_without_recomputing(
    world: Workspace,  # noqa: F811
) -> None:
    computed: list[Snapshot] = []

    def counted(workspace: Workspace) -> Snapshot:
        computed.append(compute_snapshot(workspace))
        return computed[-1]

    cache = SnapshotCache(world, compute=counted, ttl_seconds=0)
    first = cache.get(wait=60)
    cache.wait_idle()
    time.sleep(0.01)
    cache.get()
    cache.wait_idle()
    latest = cache.get()
    cache.wait_idle()  # that get() started another refresh: let it end before the data moves
    assert first is not None and latest is not None
    assert len(computed) == 1 and latest.computed_at > first.computed_at
    with world.store.engine.begin() as conn:  # the data moves: computed again
        conn.execute(insert(LeadEvent).values(lead_id="L-a1", kind="note", actor="test",
                                              at=datetime(2026, 12, 1)))
    cache.get()
    cache.wait_idle()
    assert len(computed) == 2


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_serve_runs_several_processes_on_one_port(world: Workspace) -> None:  # noqa: F811
    port = free_port()
    doorstep = Path(sys.executable).with_name("doorstep")
    server = subprocess.Popen(
        [str(doorstep), "serve", str(world.path), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        serving = [c for c in children
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
        assert len(serving) == 2
        answers = {httpx.get(f"http://127.0.0.1:{port}/healthz").status_code for _ in range(20)}
        assert answers == {200}
    finally:
        os.killpg(server.pid, signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert b"with 2 processes" in output and b"Traceback" not in output
