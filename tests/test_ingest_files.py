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
