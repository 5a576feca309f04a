"""Write-back to HubSpot and Salesforce through the outbox, against local servers that answer
as the real APIs do: tasks for the owner, the EQL status on the company or account, retries on
429 (Retry-After), 5xx and expired tokens, dead letters for what cannot succeed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crm_servers import HubSpot, Salesforce, serving
from sqlalchemy import select
from test_act_stage import NOW, build_act_workspace
from typer.testing import CliRunner

from doorstep.act import act, reject_lead
from doorstep.act.outbox import DEAD, PENDING, SENT
from doorstep.act.worker import run_worker
from doorstep.cli import app
from doorstep.store.models import Delivery
from doorstep.workspace import Workspace

OWNERS = {"ada@example.com": "41629779", "bea@example.com": "41629780"}
USERS = {"ada@example.com": "0055e000001AbCdAAK", "bea@example.com": "0055e000001AbCeAAK"}


@pytest.fixture
def crms(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubSpot, str, Salesforce, str]]:
    hubspot = HubSpot(["a1", "a2", "a3"], OWNERS)
    salesforce = Salesforce(["a1", "a2", "a3"], USERS)
    monkeypatch.setenv("DOORSTEP_HUBSPOT_TOKEN", hubspot.token)
    monkeypatch.setenv("DOORSTEP_SALESFORCE_TOKEN", salesforce.token)
    with serving(hubspot) as hub_url, serving(salesforce) as sf_url:
        yield hubspot, hub_url, salesforce, sf_url


def crm_workspace(tmp_path: Path, store_url: str, hub_url: str, sf_url: str,
                  channels: str = '["hubspot", "salesforce"]') -> Workspace:
    toml = (f'[act]\ndeliver = "send"\nescalate = false\nretry_seconds = 60\n'
            f'channels = {{ rep = {channels}, partner = [] }}\n\n'
            f'[act.crm]\nhubspot_url = "{hub_url}"\nsalesforce_url = "{sf_url}"\n')
    return build_act_workspace(tmp_path / "ws", store_url, toml=toml)


def calls(*crms: HubSpot | Salesforce) -> int:
    """How many requests the CRM servers have answered."""
    return sum(len(crm.calls) for crm in crms)


def deliveries(workspace: Workspace, channel: str) -> list[Any]:
    with workspace.store.engine.connect() as conn:
        return list(conn.execute(select(Delivery).where(Delivery.channel == channel)
                                 .order_by(Delivery.delivery_id)))


def test_an_eql_becomes_a_task_for_its_owner_and_a_status_in_both_crms(
    tmp_path: Path, store_url: str, crms: tuple[HubSpot, str, Salesforce, str]
) -> None:
    hubspot, hub_url, salesforce, sf_url = crms
    workspace = crm_workspace(tmp_path, store_url, hub_url, sf_url)
    report = act(workspace, now=NOW, send=True)
    assert report.delivery is not None
    assert report.delivery.counts("hubspot").sent == 2
    assert report.delivery.counts("salesforce").sent == 2

    (task,) = [t for t in hubspot.tasks.values()
               if t["associations"][0]["to"]["id"] == "a1"]
    assert task["properties"]["hubspot_owner_id"] == OWNERS["ada@example.com"]
    assert "Northwind" in task["properties"]["hs_task_subject"]
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert task["associations"][0]["types"][0]["associationTypeId"] == 192
    assert hubspot.companies["a1"]["doorstep_eql_status"] == "EQL"
    assert "doorstep_eql_status" not in hubspot.companies["a3"]  # not an EQL

    (sf_task,) = [t for t in salesforce.tasks.values() if t["WhatId"] == "a1"]
    assert sf_task["OwnerId"] == USERS["ada@example.com"]
    assert sf_task["Status"] == "Not Started" and sf_task["ActivityDate"] >= "2026-11-24"
    assert salesforce.accounts["a1"]["Doorstep_EQL_Status__c"] == "EQL"

    before = calls(hubspot, salesforce)
    act(workspace, now=NOW + timedelta(hours=1), send=True)  # nothing new to write
    assert calls(hubspot, salesforce) == before
    workspace.store.engine.dispose()


def test_a_lead_that_moves_on_updates_the_status_once_without_another_task(
    tmp_path: Path, store_url: str, crms: tuple[HubSpot, str, Salesforce, str]
) -> None:
    hubspot, hub_url, salesforce, sf_url = crms
    workspace = crm_workspace(tmp_path, store_url, hub_url, sf_url)
    act(workspace, now=NOW, send=True)
    tasks = (len(hubspot.tasks), len(salesforce.tasks))
    reject_lead(workspace, "L-a1", "already_working", now=NOW + timedelta(hours=1))
    report = act(workspace, now=NOW + timedelta(hours=2), send=True)
    assert report.queued.get("crm_status") == 2  # one per CRM
    assert hubspot.companies["a1"]["doorstep_eql_status"] == "EQL rejected"
    assert salesforce.accounts["a1"]["Doorstep_EQL_Status__c"] == "EQL rejected"
    assert hubspot.companies["a2"]["doorstep_eql_status"] == "EQL"  # still routed
    assert (len(hubspot.tasks), len(salesforce.tasks)) == tasks
    before = calls(hubspot, salesforce)
    act(workspace, now=NOW + timedelta(hours=3), send=True)  # said once
    assert calls(hubspot, salesforce) == before
    workspace.store.engine.dispose()


def test_rate_limits_server_errors_and_expired_tokens_are_retried_without_duplicates(
    tmp_path: Path, store_url: str, crms: tuple[HubSpot, str, Salesforce, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, hub_url, salesforce, sf_url = crms
    workspace = crm_workspace(tmp_path, store_url, hub_url, sf_url, '["hubspot"]')
    config = workspace.config.act

    act(workspace, now=NOW, send=False)
    # 1. a rate limit: wait as long as Retry-After says, not counted as a failed try
    hubspot.script = [("/crm/v3/", (429, {"Retry-After": "7"}, {
        "status": "error", "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT", "correlationId": "c1", "policyName": "SECONDLY"}))] * 2
    run_worker(workspace.store, config, now=NOW)
    rows = deliveries(workspace, "hubspot")
    assert {(d.status, d.attempts) for d in rows} == {(PENDING, 0)}
    assert {d.next_attempt_at for d in rows} == {NOW + timedelta(seconds=7)}
    assert "rate limited" in rows[0].last_error

    # 2. the task is made, then the status update meets a 502: retried later with backoff,
    # and the retry finds its task instead of making a second one
    hubspot.script = [("/crm/v3/objects/companies/", (502, {}, {
        "status": "error", "message": "Bad Gateway", "correlationId": "c2"}))] * 2
    run_worker(workspace.store, config, now=NOW + timedelta(seconds=8))
    rows = deliveries(workspace, "hubspot")
    assert {(d.status, d.attempts) for d in rows} == {(PENDING, 1)}
    assert len(hubspot.tasks) == 2 and "HTTP 502" in rows[0].last_error

    # 3. the access token expired meanwhile: refreshed once, then everything goes through
    hubspot.expire()
    monkeypatch.setenv("DOORSTEP_HUBSPOT_REFRESH_TOKEN", "refresh-1")
    monkeypatch.setenv("DOORSTEP_HUBSPOT_CLIENT_ID", "client")
    monkeypatch.setenv("DOORSTEP_HUBSPOT_CLIENT_SECRET", "secret")
    report = run_worker(workspace.store, config, now=NOW + timedelta(minutes=5))
    assert report.counts("hubspot").sent == 2 and hubspot.refreshed == 1
    assert {d.status for d in deliveries(workspace, "hubspot")} == {SENT}
    assert len(hubspot.tasks) == 2  # still one task per EQL
    refresh = [c for c in hubspot.calls if c[1] == "/oauth/v1/token"][0]
    assert refresh[2]["grant_type"] == ["refresh_token"]
    workspace.store.engine.dispose()


def test_what_cannot_succeed_goes_to_the_dead_letters_at_once_with_the_crms_reason(
    tmp_path: Path, store_url: str, crms: tuple[HubSpot, str, Salesforce, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, hub_url, salesforce, sf_url = crms
    hubspot.properties = set()  # the status property was never created in HubSpot
    salesforce.expire()  # and Salesforce's token expired, with no refresh token to renew it
    workspace = crm_workspace(tmp_path, store_url, hub_url, sf_url)
    act(workspace, now=NOW, send=True)
    hub = deliveries(workspace, "hubspot")
    assert {(d.status, d.attempts) for d in hub} == {(DEAD, 1)}
    assert 'Property \\"doorstep_eql_status\\" does not exist' in hub[0].last_error or \
        'Property "doorstep_eql_status" does not exist' in hub[0].last_error
    sf = deliveries(workspace, "salesforce")
    assert {d.status for d in sf} == {DEAD}
    assert "INVALID_SESSION_ID" in sf[0].last_error
    assert "DOORSTEP_SALESFORCE_TOKEN" in sf[0].last_error
    assert not salesforce.tasks
    workspace.store.engine.dispose()


def test_the_act_command_writes_back_and_reports_per_channel(
    tmp_path: Path, store_url: str, crms: tuple[HubSpot, str, Salesforce, str]
) -> None:
    hubspot, hub_url, salesforce, sf_url = crms
    workspace = crm_workspace(tmp_path, store_url, hub_url, sf_url)
    workspace.store.engine.dispose()
    result = CliRunner().invoke(app, ["act", str(workspace.path)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Delivered: 4 sent (hubspot 2, salesforce 2)" in said
    assert len(hubspot.tasks) == 2 and len(salesforce.tasks) == 2
