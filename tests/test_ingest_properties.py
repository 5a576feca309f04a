"""Property: an import never loses a row; every input row is loaded or quarantined."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import SMALL_WORLD, write_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from doorstep.ingest import import_workspace
from doorstep.store import Store
from doorstep.store.models import Account, QuarantinedRow

cell = st.one_of(
    st.just(""),
    st.sampled_from(["12", "-4", "3.5", "true", "no", "2026-01-02", "r1", "r404", "DE", " x "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
account_row = st.fixed_dictionaries(
    {
        "account_id": st.one_of(
            st.just(""), st.sampled_from(["a1", "a2", "a3"]), st.text(min_size=1, max_size=6)
        ),
        "name": cell,
        "website": cell,
        "country": cell,
        "industry": cell,
        "employees": cell,
        "annual_revenue": cell,
        "owner_id": cell,
        "territory": cell,
        "is_customer": cell,
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(account_row, max_size=25))
def test_import_never_loses_a_row(tmp_path: Path, store: Store, rows: list[dict[str, str]]) -> None:
    workspace = tmp_path / "prop"
    for name, table_rows in SMALL_WORLD.items():
        if name != "accounts":
            write_table(workspace, name, table_rows)
    # Rows referencing accounts would be quarantined for unknown ids; keep them out of the count.
    write_table(workspace, "leads", [])
    write_table(workspace, "opportunities", [])
    path = write_table(workspace, "accounts", rows)
    with path.open(newline="", encoding="utf-8") as f:
        # (file row number, cells) of every non-blank row: blank rows are skipped, not counted
        data_rows = [(i, r) for i, r in enumerate(list(csv.reader(f))[1:], start=2)
                     if any(v.strip() for v in r)]

    report = import_workspace(workspace, store)

    counts = report.tables["accounts"]
    assert counts.read == len(data_rows)
    assert counts.loaded + counts.quarantined == counts.read
    with store.engine.connect() as conn:
        bad = set(
            conn.execute(
                select(QuarantinedRow.row_number).where(
                    QuarantinedRow.table_name == "accounts", ~QuarantinedRow.row_loaded)
            ).scalars()
        )
        loaded_ids = set(conn.execute(select(Account.account_id)).scalars())
    assert len(bad) == counts.quarantined
    expected_ids = {r[0].strip() for i, r in data_rows if i not in bad}
    assert expected_ids <= loaded_ids
