"""The synthetic demo world: contract-shaped files, a truth to check against, realistic mess."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from doorstep.demo_world import C_ALPHA3, C_CODE, C_NAME, SUFFIXES, WorldSummary, generate_world
from doorstep.ingest.contract import TABLES
from doorstep.map.normalize import registrable_domain

TODAY = date(2026, 5, 1)
COUNTRY = {
    **{c.lower(): c for c in C_CODE},
    **{n.lower(): c for n, c in zip(C_NAME, C_CODE, strict=True)},
    **{a.lower(): c for a, c in zip(C_ALPHA3, C_CODE, strict=True)},
}


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file; each row also carries its row number as '__row'."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = []
        for number, record in enumerate(reader, start=2):
            assert len(record) == len(header), f"{path.name} row {number} is ragged"
            rows.append({**dict(zip(header, record, strict=True)), "__row": str(number)})
    return header, rows


def bad_rows(world: Path) -> set[tuple[str, int]]:
    """(table, row number) of every deliberately bad row."""
    _, rows = read(world / "truth" / "bad_rows.csv")
    return {(Path(r["file"]).stem, int(r["row"])) for r in rows}


def good(world: Path, table: str) -> list[dict[str, str]]:
    """The rows of a table that are not listed as bad."""
    bad = bad_rows(world)
    rows = read(world / "data" / f"{table}.csv")[1]
    return [r for r in rows if (table, int(r["__row"])) not in bad]


def partner_records(world: Path) -> dict[tuple[str, str], dict[str, str]]:
    """The good partner accounts by (partner_id, partner_account_id)."""
    return {(r["partner_id"], r["partner_account_id"]): r for r in good(world, "partner_accounts")}


def truth_pairs(world: Path) -> list[dict[str, str]]:
    return read(world / "truth" / "overlaps.csv")[1]


def base_name(name: str) -> str:
    """A name without its legal suffix, lower case."""
    text = name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if text.endswith(" " + suffix.lower()):
            return text[: -len(suffix) - 1]
    return text


def domain_label(website: str) -> str:
    """northwindanalytics from https://www.northwindanalytics.co.uk/about."""
    host = website.lower().split("://")[-1].split("/")[0]
    host = host.removeprefix("www.")
    return host.split(".")[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    path = tmp_path_factory.mktemp("world")
    return path, generate_world(path, accounts=600, seed=7, today=TODAY)


def test_every_file_has_exactly_the_contract_columns(world: tuple[Path, WorldSummary]) -> None:
    path, summary = world
    for table in TABLES:
        header, rows = read(path / "data" / f"{table.name}.csv")
        assert header == table.column_names, table.name
        assert len(rows) == summary.counts[table.name] > 0
    assert read(path / "truth" / "overlaps.csv")[0] == [
        "account_id", "partner_id", "partner_account_id"]
    assert read(path / "truth" / "bad_rows.csv")[0] == [
        "file", "row", "column", "reason", "outcome"]
    assert (path / "truth" / "README.md").read_text().strip()


def test_default_sizes_follow_the_arguments(world: tuple[Path, WorldSummary]) -> None:
    path, summary = world
    assert len(good(path, "accounts")) == 600
    assert len(good(path, "partners")) == 4
    assert len(good(path, "partner_accounts")) == 4 * 1000  # max(1000, 0.6 * accounts) each
    assert len(good(path, "reps")) == 8
    assert 5 <= summary.bad_rows <= 10
    assert summary.true_overlaps == len(truth_pairs(path))


def test_ids_are_unique_except_the_listed_bad_rows(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    for table in TABLES:
        keys = Counter(tuple(r[k] for k in table.key) for r in good(path, table.name))
        assert keys.most_common(1)[0][1] == 1, table.name
    # the duplicate opportunity id is a listed bad row, not an accident
    all_ids = Counter(r["opportunity_id"] for r in read(path / "data" / "opportunities.csv")[1])
    assert all_ids.most_common(1)[0][1] == 2


def test_references_hold_except_for_the_listed_bad_rows(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    keys = {t.name: {tuple(r[k] for k in t.key) for r in good(path, t.name)} for t in TABLES}
    broken = set()
    for table in TABLES:
        for row in read(path / "data" / f"{table.name}.csv")[1]:
            for column in table.columns:
                if column.references and row[column.name]:
                    if (row[column.name],) not in keys[column.references[0]]:
                        broken.add((table.name, int(row["__row"])))
            for columns, target, _ in table.composite_references:
                if tuple(row[c] for c in columns) not in keys[target]:
                    broken.add((table.name, int(row["__row"])))
    assert broken  # some bad rows are broken references ...
    assert broken <= bad_rows(path)  # ... and every broken reference is a listed bad row


def test_the_importer_quarantines_exactly_the_listed_bad_rows(
        world: tuple[Path, WorldSummary], tmp_path: Path) -> None:
    from sqlalchemy import select

    from doorstep.ingest.load import import_workspace
    from doorstep.store import open_store
    from doorstep.store.models import QuarantinedRow

    path, _ = world
    store = open_store(f"sqlite:///{tmp_path / 'doorstep.db'}")
    try:
        import_workspace(path, store)
        with store.engine.connect() as conn:
            rows = conn.execute(select(QuarantinedRow)).all()
        found = {(Path(r.file).stem, r.row_number) for r in rows}
        loaded = {(Path(r.file).stem, r.row_number) for r in rows if r.row_loaded}
    finally:
        store.engine.dispose()
    assert found == bad_rows(path)
    _, truth = read(path / "truth" / "bad_rows.csv")
    said_loaded = {(Path(r["file"]).stem, int(r["row"])) for r in truth
                   if r["outcome"] == "row loaded without this value"}
    assert said_loaded and loaded == said_loaded


def test_values_are_iso_dates_and_plain_booleans(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    for table in TABLES:
        for row in good(path, table.name):
            for column in table.columns:
                value = row[column.name]
                if not value:
                    continue
                if column.type == "datetime":
                    assert datetime.fromisoformat(value) < datetime(2026, 5, 1), value
                elif column.type == "date":
                    assert date.fromisoformat(value) <= TODAY
                elif column.type == "boolean":
                    assert value in ("true", "false")


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    def files(path: Path) -> dict[str, bytes]:
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*.*"))}

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_world(a, accounts=300, seed=11, today=TODAY)
    generate_world(b, accounts=300, seed=11, today=TODAY)
    generate_world(c, accounts=300, seed=12, today=TODAY)
    assert files(a) == files(b)
    assert len(files(a)) == 11
    other = files(c)
    assert all(other[name] != content for name, content in files(a).items()
               if name.startswith("data/") and "partners" not in name)


def test_bad_rows_are_the_only_difference_when_turned_off(tmp_path: Path) -> None:
    generate_world(tmp_path / "bad", accounts=200, seed=3, today=TODAY)
    summary = generate_world(tmp_path / "clean", accounts=200, seed=3, today=TODAY, bad_rows=False)
    assert summary.bad_rows == 0
    assert read(tmp_path / "clean" / "truth" / "bad_rows.csv")[1] == []
    for table in TABLES:
        clean = [{k: v for k, v in r.items() if k != "__row"}
                 for r in read(tmp_path / "clean" / "data" / f"{table.name}.csv")[1]]
        kept = [{k: v for k, v in r.items() if k != "__row"}
                for r in good(tmp_path / "bad", table.name)]
        assert clean == kept, table.name


def test_truth_pairs_reference_existing_rows_and_include_our_duplicates(
        world: tuple[Path, WorldSummary]) -> None:
    path, summary = world
    accounts = {r["account_id"]: r for r in good(path, "accounts")}
    partner_accounts = set(partner_records(path))
    pairs = truth_pairs(path)
    assert len({tuple(p.values()) for p in pairs}) == len(pairs)
    for pair in pairs:
        assert pair["account_id"] in accounts
        assert (pair["partner_id"], pair["partner_account_id"]) in partner_accounts
    per_record = Counter((p["partner_id"], p["partner_account_id"]) for p in pairs)
    assert set(per_record.values()) == {1, 2}
    # a record matching two accounts matches the same company entered twice
    record = next(k for k, v in per_record.items() if v == 2)
    twice = [accounts[p["account_id"]]["name"] for p in pairs
             if (p["partner_id"], p["partner_account_id"]) == record]
    assert twice[0] != twice[1]
    assert base_name(twice[0]).split()[0] == base_name(twice[1]).split()[0]
    assert summary.overlapping_accounts == len({p["account_id"] for p in pairs})
    # overlap is a realistic share of each partner's accounts
    for partner in ("P01", "P02", "P03", "P04"):
        share = len({k for k in per_record if k[0] == partner}) / 1000
        assert 0.38 <= share <= 0.62


def test_true_overlaps_are_messy_on_the_partner_side(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    accounts = {r["account_id"]: r for r in good(path, "accounts")}
    records = partner_records(path)
    pairs = [(accounts[p["account_id"]], records[(p["partner_id"], p["partner_account_id"])])
             for p in truth_pairs(path)]
    n = len(pairs)
    same_name = sum(ours["name"] == theirs["name"] for ours, theirs in pairs)
    assert 0.1 < same_name / n < 0.7
    websites = [theirs["website"] for _, theirs in pairs]
    assert 0.08 < sum(not w for w in websites) / n < 0.25
    for form in ("linkedin.com/company/", "@", "HTTP://", "https://www.", "/about"):
        assert any(form in w for w in websites), form
    assert any(w.split(".")[0] in ("shop", "app", "eu", "us", "go", "info", "portal", "my")
               for w in websites)
    countries = Counter(theirs["country"] for _, theirs in pairs)
    assert {"", "US", "USA", "United States"} <= set(countries)
    assert any(" and " in theirs["name"] for _, theirs in pairs)
    assert any(theirs["name"].isupper() for _, theirs in pairs)
    # despite the mess, most true pairs still share a country and a domain label
    same_label = sum(domain_label(o["website"]) == domain_label(t["website"])
                     for o, t in pairs if o["website"] and t["website"] and "@" not in t["website"]
                     and "linkedin" not in t["website"] and t["website"].split(".")[0] not in
                     ("shop", "app", "eu", "us", "go", "info", "portal", "my"))
    assert same_label / n > 0.4


def test_lookalikes_exist_that_are_not_true_overlaps(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    accounts = good(path, "accounts")
    true = {(p["partner_id"], p["partner_account_id"]) for p in truth_pairs(path)}
    others = [r for r in good(path, "partner_accounts")
              if (r["partner_id"], r["partner_account_id"]) not in true]
    ours_by_first = {base_name(a["name"]).split()[0]: a for a in accounts}
    ours_by_name = {base_name(a["name"]): a for a in accounts}
    # same distinctive word, different business: Northwind Analytics vs Northwind Freight
    same_word = [(r, ours_by_first[w]) for r in others
                 if (w := base_name(r["name"]).split()[0]) in ours_by_first
                 and base_name(r["name"]) != base_name(ours_by_first[w]["name"])]
    assert len(same_word) >= 20
    # the same name abroad, with a different domain
    twins = [(r, ours_by_name[base_name(r["name"])]) for r in others
             if base_name(r["name"]) in ours_by_name]
    assert twins
    same_label = 0
    for theirs, ours in twins:
        if theirs["country"] and ours["country"]:
            assert COUNTRY[theirs["country"].lower()] != ours["country"]
        if theirs["website"] and ours["website"] and "@" not in theirs["website"]:
            mine, other = registrable_domain(ours["website"]), registrable_domain(theirs["website"])
            assert not (mine and other) or mine != other  # their own website, never ours
            if mine and other and mine.split(".")[0] == other.split(".")[0]:
                same_label += 1  # northwindanalytics.de beside northwindanalytics.com
    assert same_label, "the world must have namesakes abroad under our own website label"


def test_accounts_are_plausible(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    accounts = good(path, "accounts")
    reps = {r["rep_id"]: r for r in good(path, "reps")}
    territory = {"US": ("NA-East", "NA-West"), "CA": ("NA-East", "NA-West"), "GB": ("EMEA-North",),
                 "DE": ("EMEA-North",), "FR": ("EMEA-South",), "JP": ("APAC",), "BR": ("LATAM",)}
    for a in accounts:
        if a["country"] in territory:
            assert a["territory"] in territory[a["country"]]
        assert reps[a["owner_id"]]["territory"] == a["territory"]
        if a["employees"]:
            assert 5 <= int(a["employees"]) <= 50_000
    customers = sum(a["is_customer"] == "true" for a in accounts) / len(accounts)
    assert 0.04 < customers < 0.13
    assert len({a["name"] for a in accounts}) > 0.98 * len(accounts)
    big = [int(a["annual_revenue"]) for a in accounts if a["employees"] and a["annual_revenue"]
           and int(a["employees"]) > 1000]
    small = [int(a["annual_revenue"]) for a in accounts if a["employees"] and a["annual_revenue"]
             and int(a["employees"]) < 50]
    assert min(big) > max(small) / 10 and sum(big) / len(big) > 20 * sum(small) / len(small)
    active = sum(r["active"] == "true" for r in reps.values()) / len(reps)
    assert active >= 0.6


def test_warmth_answers_cover_some_true_overlaps_recently(world: tuple[Path, WorldSummary]) -> None:
    path, _ = world
    true = {(p["partner_id"], p["partner_account_id"]) for p in truth_pairs(path)}
    records = partner_records(path)
    answers = good(path, "warmth_answers")
    asked = {(a["partner_id"], a["partner_account_id"]) for a in answers}
    assert asked <= true
    assert 0.2 < len(asked) / len(true) < 0.4
    for a in answers:
        assert datetime.fromisoformat(a["answered_at"]) >= datetime(2026, 5, 1) - timedelta(days=60)
        assert a["note"] and a["answered_by"]

    def strong_share(relationship: str) -> float:
        picked = [a for a in answers
                  if records[(a["partner_id"], a["partner_account_id"])]["relationship"]
                  == relationship]
        return sum(a["answer"] == "strong" for a in picked) / len(picked)

    assert strong_share("customer") > strong_share("prospect") + 0.15


def test_observed_conversion_follows_the_truth(tmp_path: Path) -> None:
    generate_world(tmp_path, accounts=3000, seed=5, today=TODAY)
    truth = json.loads((tmp_path / "truth" / "conversion.json").read_text())["source_types"]
    leads = good(tmp_path, "leads")
    opportunities = good(tmp_path, "opportunities")
    converted = {o["lead_id"] for o in opportunities if o["lead_id"]}
    mature = [r for r in leads if datetime.fromisoformat(r["created_at"]) < datetime(2025, 12, 1)]
    rate = {}
    for source in ("eql", "sql", "mql", "event"):
        group = [r for r in mature if r["source_type"] == source]
        rate[source] = sum(r["lead_id"] in converted for r in group) / len(group)
    assert truth["eql"]["p_opportunity"] > truth["mql"]["p_opportunity"]
    assert rate["eql"] > rate["sql"] > rate["mql"] > rate["event"]
    # not every opportunity names its lead, so the observed rate is a bit below the truth
    assert 0.4 * truth["eql"]["p_opportunity"] < rate["eql"] < 1.1 * truth["eql"]["p_opportunity"]
    # young leads are often still open: fewer conversions in the last month than earlier
    recent = [r for r in leads if datetime.fromisoformat(r["created_at"]) > datetime(2026, 4, 1)]
    assert sum(r["lead_id"] in converted for r in recent) / len(recent) < 0.5 * (
        sum(r["lead_id"] in converted for r in mature) / len(mature))
    # the opportunities themselves look like a CRM's
    by_lead = {r["lead_id"]: r for r in leads}
    for o in opportunities:
        if o["lead_id"]:
            lead = by_lead[o["lead_id"]]
            days = (datetime.fromisoformat(o["created_at"])
                    - datetime.fromisoformat(lead["created_at"])).days
            assert 3 <= days <= 120
            assert not lead["account_id"] or lead["account_id"] == o["account_id"]
        closed = o["stage"] in ("Closed Won", "Closed Lost")
        assert bool(o["closed_at"]) == closed == bool(o["is_won"])
        assert (o["is_won"] == "true") == (o["stage"] == "Closed Won")
    assert any(not o["lead_id"] for o in opportunities)
    assert any(not r["account_id"] and r["company"] for r in leads if r["source_type"] == "mql")


def test_progress_reports_every_table(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []

    def progress(stage: str, rows: int) -> None:
        calls.append((stage, rows))

    summary = generate_world(tmp_path, accounts=100, partners=2, partner_accounts=50, seed=1,
                             today=TODAY, progress=progress)
    assert calls == [(t.name, summary.counts[t.name]) for t in TABLES] + [
        ("truth", summary.true_overlaps)]
    assert len(good(tmp_path, "partner_accounts")) == 100
