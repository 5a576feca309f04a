"""Exports as CRMs and account-mapping tools write them: HubSpot, Salesforce, Crossbeam and
Reveal files recognised by their headers (or named with --profile), as CSV or Parquet."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.ingest import ImportFailure, import_workspace
from doorstep.ingest.profiles import PROFILE_NAMES, layouts
from doorstep.store import Store
from doorstep.store.models import Account, Opportunity, Partner, PartnerAccount, Rep

runner = CliRunner()

HUBSPOT_COMPANIES = [
    ["Record ID", "Company name", "Company Domain Name", "Website URL", "Country/Region",
     "Industry", "Number of Employees", "Annual Revenue", "Company owner", "Lifecycle Stage",
     "Create Date"],
    ["101", "Acme Freight Inc", "acmefreight.com", "", "United States", "Logistics", "4,000",
     "1000000", "Jane Doe", "Customer", "2026-01-02 10:00"],
    ["102", "Beta Labs", "", "https://betalabs.io", "Germany", "", "12", "", "Someone Else",
     "Lead", "2026-01-03 10:00"],
]
HUBSPOT_DEALS = [
    ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date", "Create Date",
     "Deal owner", "Associated Company IDs (Primary)"],
    ["9001", "Acme renewal", "Closed Won", "Sales", "5000", "2026-03-01", "2026-02-01",
     "Jane Doe", "101"],
    ["9002", "Beta new", "Appointment Scheduled", "Sales", "", "2026-12-31", "2026-11-01",
     "Jane Doe", "102;101"],
]
CROSSBEAM = [
    ["Partner", "Partner Population", "Partner Account Name", "Partner Website",
     "Partner Account Owner Email"],
    ["Cloudy Partners", "Customers", "ACME Freight", "acmefreight.com", "pat@cloudy.example"],
    ["Cloudy Partners", "Open Opportunities", "Beta Labs GmbH", "betalabs.io", ""],
    ["Cloudy Partners", "Partners", "Gamma Co", "gamma.co", ""],
]


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return path


def write_parquet(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header, *body = rows
    pq.write_table(pa.table({h: [r[i] for r in body] for i, h in enumerate(header)}), path)
    return path


def rows_of(store: Store, model: Any) -> dict[str, Any]:
    with store.engine.connect() as conn:
        found = conn.execute(select(model.__table__)).mappings().all()
    key = model.__table__.primary_key.columns.keys()[-1]
    return {r[key]: dict(r) for r in found}


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A workspace holding a reps file and HubSpot and Crossbeam exports, as downloaded."""
    workspace = tmp_path / "ws"
    data = workspace / "data"
    write_csv(data / "reps.csv", [["rep_id", "name", "email"], ["r1", "Jane Doe", "jane@x.io"]])
    write_csv(data / "hubspot-crm-exports-all-companies-2026-12-01.csv", HUBSPOT_COMPANIES)
    write_csv(data / "hubspot-crm-exports-all-deals-2026-12-01.csv", HUBSPOT_DEALS, ";")
    write_csv(data / "crossbeam-report.csv", CROSSBEAM)
    return workspace


def test_hubspot_and_crossbeam_exports_are_recognised_by_their_headers(
    exports: Path, store: Store
) -> None:
    report = import_workspace(exports, store)
    assert report.tables["accounts"].layout == "HubSpot companies export"
    assert report.tables["opportunities"].layout == "HubSpot deals export"
    assert report.tables["partner_accounts"].layout == "Crossbeam partner records export"
    assert "partners" not in report.absent and {"leads", "warmth_answers"} <= set(report.absent)

    accounts = rows_of(store, Account)
    acme, beta = accounts["101"], accounts["102"]
    assert (acme["name"], acme["website"], acme["country"]) == (
        "Acme Freight Inc", "acmefreight.com", "United States")
    assert beta["website"] == "https://betalabs.io"  # the next spelling, where the first is empty
    assert acme["employees"] == 4000 and acme["is_customer"] is True
    assert beta["is_customer"] is False
    assert acme["owner_id"] == "r1"  # "Jane Doe" is a rep, found by name
    assert beta["owner_id"] is None  # not a rep: left out, and kept as it was written
    assert beta["attributes"]["Company owner"] == "Someone Else"
    assert acme["attributes"]["Create Date"] == "2026-01-02 10:00"

    deals = rows_of(store, Opportunity)
    won, open_deal = deals["9001"], deals["9002"]
    assert won["is_won"] is True and won["closed_at"] is not None
    assert open_deal["is_won"] is None and open_deal["closed_at"] is None  # a forecast date
    assert (won["account_id"], open_deal["account_id"]) == ("101", "102")  # the primary company

    partners = rows_of(store, Partner)
    assert {p["name"] for p in partners.values()} == {"Cloudy Partners"}
    shared = rows_of(store, PartnerAccount)
    by_name = {r["name"]: r for r in shared.values()}
    assert by_name["ACME Freight"]["relationship"] == "customer"
    assert by_name["ACME Freight"]["partner_id"] == "cloudy-partners"
    assert by_name["ACME Freight"]["partner_owner_email"] == "pat@cloudy.example"
    assert by_name["Beta Labs GmbH"]["relationship"] == "opportunity"
    # "Partners" is no relationship with the account: quarantined, not guessed
    assert "Gamma Co" not in by_name and report.tables["partner_accounts"].quarantined == 1
    (group,) = [g for g in report.problems if g.table == "partner_accounts"]
    assert group.file == "data/crossbeam-report.csv" and group.row == 4

    again = import_workspace(exports, store)  # ids made from names and websites are stable
    assert again.changed == 0


def test_the_cli_names_the_layout_it_read_each_file_as(exports: Path) -> None:
    result = runner.invoke(app, ["import", str(exports)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Read hubspot-crm-exports-all-deals-2026-12-01.csv as a HubSpot deals export " \
        "(opportunities)" in said


def test_salesforce_reports_with_locale_dates_and_reveal_under_their_profiles(
    tmp_path: Path, store: Store
) -> None:
    workspace = tmp_path / "ws"
    data = workspace / "data"
    write_csv(data / "report1701.csv", [
        ["Account ID", "Account Name", "Website", "Billing Country", "Employees", "Type",
         "Account Owner"],
        ["001A", "Northwind GmbH", "northwind.de", "Germany", "250", "Customer - Direct", ""],
        ["001B", "Contoso", "contoso.com", "US", "", "Prospect", ""],
    ])
    write_parquet(data / "opps.parquet", [
        ["Opportunity ID", "Opportunity Name", "Account ID", "Stage", "Amount", "Close Date",
         "Created Date", "Closed", "Won"],
        ["006A", "Northwind expansion", "001A", "Closed Lost", "1200", "11/10/2026",
         "10/01/2026", "true", "false"],
    ])
    write_csv(data / "partners.csv", [["partner_id", "name"], ["bluesky", "Blue Sky Ltd"]])
    write_csv(data / "reveal-mapping.csv", [
        ["Partner Name", "Company Name", "Company Domain", "Partner Account Status"],
        ["BlueSky", "Northwind", "northwind.de", "Customer"],
        ["Green Co", "Contoso Ltd", "contoso.com", "Prospect"],
    ])
    with pytest.raises(ImportFailure, match=r"reveal-mapping\.csv matches no layout of the "
                       r"Salesforce profile's exports"):
        import_workspace(workspace, store, profile="salesforce")

    (data / "reveal-mapping.csv").rename(data / "partner_accounts.csv")  # named after its table
    report = import_workspace(workspace, store, date_format="MM/DD/YYYY")
    assert report.tables["partner_accounts"].layout == "Reveal account mapping export"
    assert report.tables["opportunities"].layout == "Salesforce opportunities report"
    assert report.quarantined == 0 and report.cells_left_out == 0
    accounts = rows_of(store, Account)
    assert accounts["001A"]["is_customer"] is True and accounts["001B"]["is_customer"] is False
    opp = rows_of(store, Opportunity)["006A"]
    assert opp["is_won"] is False and str(opp["closed_at"]).startswith("2026-11-10")
    assert str(opp["created_at"]).startswith("2026-10-01")
    partners = rows_of(store, Partner)
    assert partners["bluesky"]["name"] == "Blue Sky Ltd"  # listed: kept as partners.csv says
    assert partners["green-co"]["name"] == "Green Co"  # named only by the export: added
    assert {r["partner_id"] for r in rows_of(store, PartnerAccount).values()} == {
        "bluesky", "green-co"}


def test_the_tap_crossbeam_partner_account_layout_as_parquet(tmp_path: Path, store: Store) -> None:
    workspace = tmp_path / "ws"
    data = workspace / "data"
    write_csv(data / "accounts.csv", [["account_id", "name"], ["a1", "Acme"]])
    write_parquet(data / "partner_account.parquet", [
        ["_crossbeam_id", "_partner_name", "_partner_population_names", "_record_id",
         "_xb_name", "_xb_website", "industry"],
        ["cb1", "Cloudy", '["Customers"]', "0011", "Acme", "acme.com", "Software"],
    ])
    report = import_workspace(workspace, store, profile="crossbeam")
    assert report.quarantined == 0
    (row,) = rows_of(store, PartnerAccount).values()
    assert (row["partner_id"], row["partner_account_id"], row["name"], row["website"],
            row["relationship"]) == ("cloudy", "0011", "Acme", "acme.com", "customer")
    assert row["attributes"]["industry"] == "Software"


def test_an_unknown_layout_gets_one_sentence_naming_what_is_missing(
    exports: Path, store: Store
) -> None:
    write_csv(exports / "data" / "companies-export.csv", [
        ["Record ID", "Company Title", "Company Domain Name"], ["1", "Acme", "acme.com"]])
    result = runner.invoke(app, ["import", str(exports)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "companies-export.csv matches no layout of any known exports" in said
    assert "HubSpot companies export, needs 'Company name' (the closest header is " \
        "'Company Title')" in said
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 4
    with store.engine.connect() as conn:  # nothing was loaded
        assert conn.execute(select(Rep)).first() is None


def test_two_files_for_one_table_are_refused(exports: Path, store: Store) -> None:
    write_csv(exports / "data" / "accounts.csv", [["account_id", "name"], ["a1", "Acme"]])
    with pytest.raises(ImportFailure, match=r"accounts\.csv and .*companies.* both hold accounts"):
        import_workspace(exports, store)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_layouts_sample_header_is_recognised_as_itself(profile: str) -> None:
    from doorstep.ingest.profiles import recognise

    for layout in layouts(profile):
        header = next(csv.reader([layout.sample]))
        assert recognise(Path("x.csv"), header, None) == layout, layout.label


def test_a_hubspot_export_as_parquet_with_native_types_loads_as_its_csv_does(
    exports: Path, store: Store
) -> None:
    import_workspace(exports, store)
    from_csv = rows_of(store, Account)
    data = exports / "data"
    (data / "hubspot-crm-exports-all-companies-2026-12-01.csv").unlink()
    header, *body = HUBSPOT_COMPANIES
    columns: dict[str, Any] = {h: [r[i] for r in body] for i, h in enumerate(header)}
    columns["Record ID"] = pa.array([int(v) for v in columns["Record ID"]], pa.int64())
    columns["Number of Employees"] = pa.array([4000, 12], pa.int64())
    pq.write_table(pa.table(columns), data / "companies.parquet")
    report = import_workspace(exports, store)
    assert report.tables["accounts"].layout == "HubSpot companies export"
    from_parquet = rows_of(store, Account)
    assert from_parquet.keys() == from_csv.keys() == {"101", "102"}
    for key, row in from_parquet.items():
        assert {k: v for k, v in row.items() if k != "row_hash"} == \
            {k: v for k, v in from_csv[key].items() if k != "row_hash"}


def test_a_workspace_declares_its_own_layout_in_profiles(tmp_path: Path, store: Store) -> None:
    workspace = tmp_path / "ws"
    data = workspace / "data"
    write_csv(data / "accounts.csv", [["account_id", "name"], ["a1", "Acme"]])
    write_csv(data / "from-our-partner-portal.csv", [
        ["Reseller", "Customer Company", "Customer URL", "Stage"],
        ["Blue Sky", "Acme", "acme.com", "Closed Customer"],
    ])
    with pytest.raises(ImportFailure, match="matches no layout"):
        import_workspace(workspace, store)

    (workspace / "profiles").mkdir()
    (workspace / "profiles" / "portal.toml").write_text('''
title = "Partner portal"

[[layouts]]
name = "deal registrations"
table = "partner_accounts"
adds_partners = true
sample = "Reseller,Customer Company,Customer URL,Stage"

[layouts.columns]
partner_id = { from = ["Reseller"], slug = true }
partner_name = ["Reseller"]
partner_account_id = { from = [], or_hash = ["name", "website"] }
name = ["Customer Company"]
website = ["Customer URL"]
relationship = { from = ["Stage"], contains = true, map = { customer = "customer", \
deal = "opportunity" } }
''', encoding="utf-8")
    report = import_workspace(workspace, store)
    assert report.tables["partner_accounts"].layout == "Partner portal deal registrations"
    (row,) = rows_of(store, PartnerAccount).values()
    assert (row["partner_id"], row["name"], row["relationship"]) == (
        "blue-sky", "Acme", "customer")

    (workspace / "profiles" / "broken.toml").write_text(
        '[[layouts]]\nname = "x"\ntable = "accounts"\n[layouts.columns]\nrevenue = ["R"]\n',
        encoding="utf-8")
    with pytest.raises(ImportFailure, match=r"broken\.toml: layout 'x': accounts has no column "
                       r"'revenue'"):
        import_workspace(workspace, store)
