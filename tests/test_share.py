"""Partner data exchange between two real doorstep installs, each with its own workspace.

Acme and Borealis share 24 companies; each has 20 more the other must never learn of. The
online tests run Borealis's `doorstep serve` as its own process on loopback and drive Acme
from the CLI, as two companies would.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.share.policy import visibility
from doorstep.store.models import PartnerAccount, ShareAudit
from doorstep.workspace import open_workspace

runner = CliRunner()
SHARED = 24
ONLY = 20
# Names and domains only one side has: the other side must never store, log or show them.
ACME_ONLY = [(f"Zephyrine Quarry {i}", f"zephyrine-{i}.com") for i in range(ONLY)]
BOREALIS_ONLY = [(f"Obsidian Marmot {i}", f"obsidian-marmot-{i}.com") for i in range(ONLY)]
COMMON = [(f"Common Venture {i}", f"common-venture-{i}.com") for i in range(SHARED)]

ACME_TOML = """
[sharing.BOR]
customers = "overlaps"
open_opportunities = "overlaps"
prospects = "counts"
fields = ["name", "website", "relationship"]

[share]
min_set_size = 10
min_set_change = 3

[populations.large]
side = "ours"
when = { employees = { min = 300 } }
"""
BOREALIS_TOML = """
[sharing.ACME]
customers = "overlaps"
prospects = "overlaps"
fields = ["name", "website", "country", "relationship"]

[share]
min_set_size = 10
max_syncs_per_day = 3
"""


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build_install(folder: Path, prefix: str, only: list[tuple[str, str]], toml: str) -> Path:
    """A workspace: our accounts (common ones first, customers for the first half), one rep."""
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    data = folder / "data"
    accounts = [
        {"account_id": f"{prefix}-{i}", "name": name, "website": f"https://www.{domain}",
         "country": "US", "is_customer": "true" if i < SHARED // 2 else "false",
         "employees": 400, "owner_id": "r1"}
        for i, (name, domain) in enumerate([*COMMON, *only])
    ]
    write_csv(data / "accounts.csv", accounts)
    write_csv(data / "reps.csv", [{"rep_id": "r1", "name": "Rae", "email": "rae@example.com"}])
    (folder / "doorstep.toml").write_text(toml, encoding="utf-8")  # the defaults, and these
    result = runner.invoke(app, ["import", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def said(result: object) -> str:
    """A command's output with the terminal's line wrapping undone."""
    return " ".join(str(getattr(result, "output", "")).split())


def key_of(folder: Path) -> str:
    result = runner.invoke(app, ["partner", "key", str(folder)])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def installs(tmp_path: Path) -> tuple[Path, Path]:
    acme = build_install(tmp_path / "acme", "A", ACME_ONLY, ACME_TOML)
    borealis = build_install(tmp_path / "borealis", "B", BOREALIS_ONLY, BOREALIS_TOML)
    return acme, borealis


def link(folder: Path, partner: str, key: str, url: str | None = None) -> None:
    args = ["partner", "link", str(folder), "--partner", partner, "--key", key]
    result = runner.invoke(app, [*args, "--url", url] if url else args)
    assert result.exit_code == 0, result.output


def workspace_text(folder: Path) -> bytes:
    """Every byte the install keeps: database (and WAL), logs, exports, bundles, config."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def assert_never_stored(folder: Path, others: list[tuple[str, str]]) -> None:
    blob = workspace_text(folder)
    for name, domain in others:
        assert name.encode() not in blob, f"{name} reached {folder}"
        assert domain.encode() not in blob, f"{domain} reached {folder}"


def test_the_key_is_one_line_and_the_private_key_only_its_owners(installs: tuple[Path, Path]
                                                                  ) -> None:
    acme, _ = installs
    line = key_of(acme)
    assert line.startswith("doorstep-ed25519:") and "\n" not in line
    assert key_of(acme) == line  # the same key every time
    mode = (acme / "keys" / "ed25519.pem").stat().st_mode & 0o777
    assert mode == 0o600


def test_the_level_in_force_is_the_weaker_of_both_sides() -> None:
    from doorstep.config import Config

    config = Config.model_validate({"sharing": {"P0": {"customers": "full",
                                                       "prospects": "counts"}}})
    vis = visibility(config, "P0", {"customers": "overlaps", "prospects": "full"})
    assert vis.level("customers") == "overlaps"  # they share less in return
    assert vis.level("prospects") == "counts"  # we share less
    assert vis.level("open_opportunities") == "hidden"  # the default
    assert visibility(config, "other", {"customers": "full"}).level("customers") == "hidden"


def test_a_bundle_holds_only_what_the_level_in_force_allows(installs: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    acme, borealis = installs
    link(acme, "BOR", key_of(borealis))
    link(borealis, "ACME", key_of(acme))
    # Borealis declares first: before Acme has declared anything, nothing is in force for it.
    first = tmp_path / "b1.json"
    assert runner.invoke(app, ["share", "export", str(borealis), "--partner", "ACME",
                               "--out", str(first)]).exit_code == 0
    assert json.loads(first.read_text())["body"]["records"] == []
    result = runner.invoke(app, ["share", "import", str(acme), str(first)])
    assert result.exit_code == 0, result.output
    # Acme now knows Borealis's levels: its bundle shares customers in full... at most
    # `overlaps` (Borealis shares customers at overlaps), and prospects not at all (hidden there).
    second = tmp_path / "a1.json"
    assert runner.invoke(app, ["share", "export", str(acme), "--partner", "BOR",
                               "--out", str(second)]).exit_code == 0
    body = json.loads(second.read_text())["body"]
    assert body["in_force"]["customers"] == "overlaps"
    assert body["in_force"]["prospects"] == "counts"
    # Acme has no overlap with Borealis yet, so `overlaps` holds no record either.
    assert body["records"] == [] and body["levels"]["customers"] == "overlaps"
    assert_never_stored(borealis, ACME_ONLY)


def test_a_tampered_replayed_or_misaddressed_bundle_is_refused_and_changes_nothing(
    installs: tuple[Path, Path], tmp_path: Path
) -> None:
    acme, borealis = installs
    link(acme, "BOR", key_of(borealis))
    link(borealis, "ACME", key_of(acme))
    bundle = tmp_path / "b.json"
    runner.invoke(app, ["share", "export", str(borealis), "--partner", "ACME", "--out",
                        str(bundle)])
    message = json.loads(bundle.read_text())
    tampered = tmp_path / "tampered.json"
    message["body"]["levels"]["customers"] = "full"
    tampered.write_text(json.dumps(message))
    result = runner.invoke(app, ["share", "import", str(acme), str(tampered)])
    assert result.exit_code == 1 and "altered" in said(result)
    assert "Traceback" not in said(result)
    ok = runner.invoke(app, ["share", "import", str(acme), str(bundle)])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["share", "import", str(acme), str(bundle)])
    assert again.exit_code == 0 and "nothing changed" in said(again)
    # a bundle meant for Acme, brought to a third install that links Borealis
    third = tmp_path / "third"
    build_install(third, "C", [], "")
    link(third, "BOR", key_of(borealis))
    wrong = runner.invoke(app, ["share", "import", str(third), str(bundle)])
    assert wrong.exit_code == 1 and "addressed to another install" in said(wrong)
    unknown = runner.invoke(app, ["share", "import", str(borealis), str(bundle)])
    assert unknown.exit_code == 1
    with open_workspace(third).store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PartnerAccount)).scalar_one() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def borealis_server(installs: tuple[Path, Path]) -> Iterator[str]:
    """Borealis's own `doorstep serve`, a separate process on loopback."""
    _, borealis = installs
    port = free_port()
    log = (borealis / "serve.log").open("w")
    doorstep = Path(sys.executable).with_name("doorstep")
    process = subprocess.Popen(
        [str(doorstep), "serve", str(borealis), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


def test_a_private_sync_finds_the_overlap_and_nothing_else_crosses(
    installs: tuple[Path, Path], borealis_server: str
) -> None:
    acme, borealis = installs
    link(acme, "BOR", key_of(borealis), url=borealis_server)
    link(borealis, "ACME", key_of(acme))
    result = runner.invoke(app, ["share", "sync", str(acme), "--partner", "BOR", "--private"])
    assert result.exit_code == 0, result.output
    workspace = open_workspace(acme)
    with workspace.store.engine.connect() as conn:
        rows = conn.execute(select(PartnerAccount).where(PartnerAccount.partner_id == "BOR")
                            ).all()
    # Borealis shares its customers (the first 12 common companies) at overlaps with Acme;
    # its prospects at counts for Acme (Acme shares prospects only at counts): sizes only.
    names = sorted(r.name for r in rows)
    assert names == sorted(f"Common Venture {i}" for i in range(SHARED // 2))
    assert all((r.attributes or {}).get("account_id", "").startswith("A-") for r in rows)
    mapped = runner.invoke(app, ["map", str(acme)])
    assert mapped.exit_code == 0, mapped.output
    out = acme / "overlaps.csv"
    assert runner.invoke(app, ["export", str(acme), "overlaps", "--out", str(out)]).exit_code == 0
    lines = [r for r in csv.DictReader(out.open(encoding="utf-8")) if r["partner_id"] == "BOR"]
    assert len(lines) == SHARED // 2 and {r["method"] for r in lines} == {"shared_id"}
    assert {r["account_id"] for r in lines} == {f"A-{i}" for i in range(SHARED // 2)}
    matrix = acme / "matrix.csv"
    assert runner.invoke(app, ["export", str(acme), "matrix", "--out", str(matrix)]).exit_code == 0
    cells = {(r["partner_id"], r["our_population"]): r
             for r in csv.DictReader(matrix.open(encoding="utf-8"))}
    assert cells[("BOR", "customers")]["customers"] == str(SHARED // 2)
    assert cells[("BOR", "large")]["customers"] == str(SHARED // 2)  # a custom population
    assert cells[("BOR", "prospects")]["customers"] == "0"
    # nothing of Borealis's other records anywhere in Acme's workspace; the common prospects
    # it shares only as a count are counted, never loaded (the names check above)
    assert_never_stored(acme, BOREALIS_ONLY)
    assert_never_stored(borealis, ACME_ONLY)
    for folder in (acme, borealis):
        with open_workspace(folder).store.engine.connect() as conn:
            kinds = set(conn.execute(select(ShareAudit.kind)).scalars())
        assert kinds & {"psi_sync", "psi_serve"}, f"no audit row in {folder}"


def test_probing_guards_refuse_small_repeated_and_nearly_identical_sets(
    installs: tuple[Path, Path], borealis_server: str
) -> None:
    acme, borealis = installs
    link(acme, "BOR", key_of(borealis), url=borealis_server)
    link(borealis, "ACME", key_of(acme))
    assert runner.invoke(app, ["share", "sync", str(acme), "--partner", "BOR",
                               "--private"]).exit_code == 0
    # one more account: the set moved by one key-pair only, which is differential probing
    data = acme / "data" / "accounts.csv"
    rows = list(csv.DictReader(data.open(encoding="utf-8")))
    rows.append({**rows[-1], "account_id": "A-probe", "name": "Probe Target",
                 "website": "https://probe-target.com"})
    write_csv(data, rows)
    assert runner.invoke(app, ["import", str(acme)]).exit_code == 0
    probe = runner.invoke(app, ["share", "sync", str(acme), "--partner", "BOR", "--private"])
    assert probe.exit_code == 1 and "differential probing" in said(probe), said(probe)
    with open_workspace(borealis).store.engine.connect() as conn:
        refused = conn.execute(select(func.count()).select_from(ShareAudit)
                               .where(ShareAudit.outcome == "refused")).scalar_one()
    assert refused == 1


def test_an_online_bundle_exchange_declares_each_sides_levels(
    installs: tuple[Path, Path], borealis_server: str
) -> None:
    from doorstep.store.models import PartnerLink

    acme, borealis = installs
    link(acme, "BOR", key_of(borealis), url=borealis_server)
    link(borealis, "ACME", key_of(acme))
    result = runner.invoke(app, ["share", "sync", str(acme), "--partner", "BOR"])
    assert result.exit_code == 0, result.output
    with open_workspace(acme).store.engine.connect() as conn:
        declared = conn.execute(select(PartnerLink.their_levels)).scalar_one()
    assert declared == {"customers": "overlaps", "prospects": "overlaps"}  # Borealis's
    with open_workspace(borealis).store.engine.connect() as conn:
        declared = conn.execute(select(PartnerLink.their_levels)).scalar_one()
    assert declared["prospects"] == "counts"  # Acme's
    assert_never_stored(acme, BOREALIS_ONLY)


def test_a_sync_signed_with_an_unlinked_key_is_refused(
    installs: tuple[Path, Path], borealis_server: str, tmp_path: Path
) -> None:
    acme, borealis = installs
    stranger = build_install(tmp_path / "stranger", "S", [], "")
    link(stranger, "BOR", key_of(borealis), url=borealis_server)
    link(borealis, "ACME", key_of(acme))  # Borealis knows Acme, not the stranger
    result = runner.invoke(app, ["share", "sync", str(stranger), "--partner", "BOR",
                                 "--private"])
    assert result.exit_code == 1
    assert "no partner is linked with" in said(result) and "Traceback" not in result.output


def test_a_replayed_altered_or_stale_request_is_refused_over_http(
    installs: tuple[Path, Path], borealis_server: str
) -> None:
    from datetime import datetime, timedelta

    from doorstep.share.identity import seal

    acme, borealis = installs
    link(acme, "BOR", key_of(borealis), url=borealis_server)
    link(borealis, "ACME", key_of(acme))
    workspace = open_workspace(acme)
    message = seal(workspace, key_of(borealis), "fields_request", {"keys": {}})
    first = httpx.post(borealis_server + "/api/share/fields", json=message)
    assert first.status_code == 200
    replay = httpx.post(borealis_server + "/api/share/fields", json=message)
    assert replay.status_code == 403 and "replay" in replay.json()["detail"]
    altered = seal(workspace, key_of(borealis), "fields_request", {"keys": {}})
    altered["body"]["keys"] = {"customers": ["d:common-venture-1.com"]}
    refused = httpx.post(borealis_server + "/api/share/fields", json=altered)
    assert refused.status_code == 403 and "altered" in refused.json()["detail"]
    stale = seal(workspace, key_of(borealis), "fields_request", {"keys": {}},
                 now=datetime.now() - timedelta(hours=2))
    late = httpx.post(borealis_server + "/api/share/fields", json=stale)
    assert late.status_code == 403 and "stale" in late.json()["detail"]
    with open_workspace(borealis).store.engine.connect() as conn:
        served = conn.execute(select(func.count()).select_from(ShareAudit)
                              .where(ShareAudit.kind == "fields_serve")).scalar_one()
    assert served == 1  # only the first, genuine request was answered
