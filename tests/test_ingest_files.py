"""Files as people export them: Excel's semicolons and BOM, UTF-16 "Unicode text", headers in
any spelling, other encodings named once, optional tables left out."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import SMALL_WORLD
from sqlalchemy import func, select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.ingest import ImportFailure, import_workspace
from doorstep.store import Store
from doorstep.store.models import Account, PartnerAccount


def rewrite(path: Path, *, delimiter: str = ",", encoding: str = "utf-8",
            header: dict[str, str] | None = None) -> None:
    """Write the CSV at `path` again with another delimiter, encoding or header spelling."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows[0] = [(header or {}).get(h, h) for h in rows[0]]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


def count(store: Store, model: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_excel_semicolons_with_a_bom_load(small_workspace: Path, store: Store) -> None:
    rewrite(small_workspace / "data" / "accounts.csv", delimiter=";", encoding="utf-8-sig")
    report = import_workspace(small_workspace, store)
    assert report.quarantined == 0
    assert count(store, Account) == len(SMALL_WORLD["accounts"])


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_utf16_unicode_text_and_pipes_load(
    small_workspace: Path, store: Store, delimiter: str
) -> None:
    rewrite(small_workspace / "data" / "partner_accounts.csv", delimiter=delimiter,
            encoding="utf-16" if delimiter == "\t" else "utf-8")
    assert import_workspace(small_workspace, store).quarantined == 0
    assert count(store, PartnerAccount) == len(SMALL_WORLD["partner_accounts"])


def test_headers_match_after_folding_case_spaces_and_punctuation(
    small_workspace: Path, store: Store
) -> None:
    rewrite(small_workspace / "data" / "partner_accounts.csv", header={
        "partner_id": "Partner ID", "partner_account_id": "Partner Account ID",
        "name": " NAME ", "relationship": "Relationship", "partner_owner_email":
        "Partner-Owner E-mail"})
    assert import_workspace(small_workspace, store).quarantined == 0
    with store.engine.connect() as conn:
        owners = set(conn.execute(select(PartnerAccount.partner_owner_email)).scalars())
    expected = {r.get("partner_owner_email") or None for r in SMALL_WORLD["partner_accounts"]}
    assert owners == expected


def test_a_bad_byte_is_reported_on_its_own_line_and_a_named_encoding_reads_it(
    small_workspace: Path, store: Store
) -> None:
    path = small_workspace / "data" / "accounts.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    first = rows[1]
    for i in range(20):  # push the accented row down to line 17
        rows.insert(1, [f"z{i}", *first[1:]])
    rows[16][1] = "Société Générale"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_bytes(out.getvalue().encode("cp1252"))
    with pytest.raises(ImportFailure, match=r"accounts\.csv, line 17, character \d+: .*cp1252"):
        import_workspace(small_workspace, store)
    import_workspace(small_workspace, store, encoding="cp1252")
    with store.engine.connect() as conn:
        names = set(conn.execute(select(Account.name)).scalars())
    assert "Société Générale" in names
    # the same, named once in doorstep.toml, through the command line
    (small_workspace / "doorstep.toml").write_text('[import]\nencoding = "cp1252"\n')
    result = CliRunner().invoke(app, ["import", str(small_workspace)])
    assert result.exit_code == 0, result.output


def test_optional_tables_may_be_absent_and_the_summary_says_so(small_workspace: Path) -> None:
    for name in ("leads", "opportunities", "warmth_answers"):
        (small_workspace / "data" / f"{name}.csv").unlink()
    result = CliRunner().invoke(app, ["import", str(small_workspace)], terminal_width=100)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "No file for leads, opportunities, warmth_answers: empty tables." in said


def test_a_required_table_may_not_be_absent(small_workspace: Path) -> None:
    (small_workspace / "data" / "partners.csv").unlink()
    result = CliRunner().invoke(app, ["import", str(small_workspace)])
    assert result.exit_code == 1 and "partners.csv is missing" in result.output


def quarantine_reasons(store: Store) -> dict[str, str]:
    from doorstep.store.models import QuarantinedRow

    with store.engine.connect() as conn:
        return {r.column_name: r.reason for r in conn.execute(select(QuarantinedRow))}


def with_values(workspace: Path, **changes: str) -> None:
    from conftest import write_table

    first = SMALL_WORLD["accounts"][0]
    write_table(workspace, "accounts", [*SMALL_WORLD["accounts"],
                                        {**first, "account_id": "a9", **changes}])


def test_us_dates_and_grouped_numbers_load_as_declared(small_workspace: Path, store: Store) -> None:
    from conftest import write_table

    row = {**SMALL_WORLD["partner_accounts"][0], "partner_account_id": "x9",
           "last_activity_at": "11/10/2026", "customer_since": "3/7/2024"}
    write_table(small_workspace, "partner_accounts", [*SMALL_WORLD["partner_accounts"], row])
    with_values(small_workspace, employees="4,000", annual_revenue="1,250,000.50")
    assert import_workspace(small_workspace, store, date_format="MM/DD/YYYY").quarantined == 0
    with store.engine.connect() as conn:
        account = conn.execute(select(Account).where(Account.account_id == "a9")).one()
        partner = conn.execute(select(PartnerAccount).where(
            PartnerAccount.partner_account_id == "x9")).one()
    assert (account.employees, account.annual_revenue) == (4000, 1_250_000.5)
    assert str(partner.last_activity_at).startswith("2026-11-10")
    assert str(partner.customer_since) == "2024-03-07"


@pytest.mark.parametrize(("written", "date_format", "stored"), [
    ("11/10/2026, 2:22 PM", "MM/DD/YYYY", "2026-11-10 14:22:00"),  # a Salesforce report
    ("2026-11-10 12:05 AM", None, "2026-11-10 00:05:00"),
    ("10.11.2026 12:30 p.m.", "DD.MM.YYYY", "2026-11-10 12:30:00"),
])
def test_times_on_a_12_hour_clock_load(small_workspace: Path, store: Store, written: str,
                                       date_format: str | None, stored: str) -> None:
    from conftest import write_table

    row = {**SMALL_WORLD["partner_accounts"][0], "partner_account_id": "x9",
           "last_activity_at": written}
    write_table(small_workspace, "partner_accounts", [*SMALL_WORLD["partner_accounts"], row])
    report = import_workspace(small_workspace, store, date_format=date_format)
    assert report.quarantined == 0 and report.cells_left_out == 0
    with store.engine.connect() as conn:
        partner = conn.execute(select(PartnerAccount).where(
            PartnerAccount.partner_account_id == "x9")).one()
    assert str(partner.last_activity_at) == stored


def test_european_numbers_and_dates_load_as_declared(small_workspace: Path, store: Store) -> None:
    with_values(small_workspace, employees="4.000", annual_revenue="1.250.000,5")
    assert import_workspace(small_workspace, store, date_format="DD.MM.YYYY",
                            decimal=",").quarantined == 0
    with store.engine.connect() as conn:
        account = conn.execute(select(Account).where(Account.account_id == "a9")).one()
    assert (account.employees, account.annual_revenue) == (4000, 1_250_000.5)


def test_an_ambiguous_date_is_never_guessed(small_workspace: Path, store: Store) -> None:
    from conftest import write_table

    row = {**SMALL_WORLD["partner_accounts"][0], "partner_account_id": "x9",
           "last_activity_at": "11/10/2026"}
    write_table(small_workspace, "partner_accounts", [*SMALL_WORLD["partner_accounts"], row])
    import_workspace(small_workspace, store)
    assert "set [import] date_format" in quarantine_reasons(store)["last_activity_at"]


def test_the_declared_formats_come_from_doorstep_toml(small_workspace: Path) -> None:
    from doorstep.store import open_store

    with_values(small_workspace, employees="4.000")
    (small_workspace / "doorstep.toml").write_text('[import]\ndecimal = ","\n')
    result = CliRunner().invoke(app, ["import", str(small_workspace)])
    assert result.exit_code == 0, result.output
    store = open_store(f"sqlite:///{small_workspace / 'doorstep.db'}")
    with store.engine.connect() as conn:
        employees = conn.execute(select(Account.employees).where(
            Account.account_id == "a9")).scalar_one()
    store.engine.dispose()
    assert employees == 4000
