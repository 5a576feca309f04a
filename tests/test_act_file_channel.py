"""With [act] deliver = "file" (a new workspace's default) each message is written into
WORKSPACE/outbox/ instead of sent; a failed delivery says why, grouped, with what to fix."""

from __future__ import annotations

import json
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from test_act_channels import free_port
from test_act_outbox import draft, queue, rows, settings
from typer.testing import CliRunner

from doorstep.act.worker import failure_advice, run_worker
from doorstep.cli import app
from doorstep.config import load_config
from doorstep.ingest.scaffold import init_workspace
from doorstep.store import Store

NOW = datetime(2026, 11, 24, 9, 0)


def test_a_new_workspace_writes_files_until_a_real_channel_is_set(tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws")
    assert load_config(tmp_path / "ws").act.deliver == "file"


def test_each_message_becomes_an_eml_or_a_json_file_once(store: Store, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    queue(store, [draft("L-1"), draft("L-2", channel="webhook"), draft("L-3", channel="slack")])
    config = settings(deliver="file", **{"from": "doorstep@example.com"})
    report = run_worker(store, config, now=NOW, outbox=outbox)
    assert (report.sent, report.failed, report.outbox) == (3, 0, outbox)
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".json", ".json"]
    email = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert email["To"] == "ada@example.com" and email["From"] == "doorstep@example.com"
    assert email["Subject"].startswith("New rep outreach lead: Northwind")
    assert email["Message-ID"].startswith(f"<{rows(store)[0].idempotency_key}")
    webhook, slack = (json.loads(f.read_text()) for f in files[1:])
    assert webhook["lead_id"] == "L-2" and "idempotency_key" in webhook
    assert set(slack) == {"text"}
    assert {r.status for r in rows(store)} == {"sent"}
    again = run_worker(store, config, now=NOW, outbox=outbox)  # nothing twice
    assert again.sent == 0 and sorted(outbox.iterdir()) == files


def test_failures_are_grouped_by_cause_with_what_to_fix(store: Store) -> None:
    queue(store, [draft(f"L-{i}") for i in range(3)])
    config = settings(smtp_host="127.0.0.1", smtp_port=free_port())
    report = run_worker(store, config, now=NOW)
    [(channel, cause)] = report.causes
    assert channel == "email" and report.causes[(channel, cause)] == 3
    [advice] = failure_advice(report)
    assert advice.startswith("3 email deliveries failed: SMTP 127.0.0.1:")
    assert "check [act] smtp_host, smtp_port" in advice and 'deliver = "file"' in advice


def test_act_prints_where_messages_were_written(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", str(folder), "--accounts", "300",
                                      "--partners", "2"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"Written to {folder / 'outbox'}:" in said
    written = list((folder / "outbox").iterdir())
    assert written and all(f.suffix in (".eml", ".json") for f in written)
    assert "failed: " not in said
