"""CSV exports of the store's tables, with the columns users and other tools expect."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeAlias

from sqlalchemy import Select, case, select

from doorstep.store.db import Store
from doorstep.store.models import (
    CELL_OUTCOME,
    Delivery,
    Lead,
    LeadEvent,
    Overlap,
    PartnerAccount,
    QuarantinedRow,
    RelatedAccount,
    ShareAudit,
    WarmthRequest,
)

Query: TypeAlias = Select[*tuple[Any, ...]]


def _quarantine() -> Query:
    q = QuarantinedRow
    return select(
        q.file,
        q.row_number.label("row"),
        q.column_name.label("column"),
        q.value,
        q.reason,
        case((q.row_loaded, CELL_OUTCOME), else_="row quarantined").label("outcome"),
    ).order_by(q.table_name, q.row_number, q.column_name)


def _overlaps() -> Query:
    o = Overlap
    return select(
        o.account_id,
        o.partner_id,
        o.partner_account_id,
        o.relationship,
        o.method,
        o.probability,
        o.evidence,
    ).order_by(o.partner_id, o.partner_account_id, o.account_id)


def _leads() -> Query:
    lead = Lead
    return select(
        lead.lead_id,
        lead.account_id,
        lead.status,
        lead.partner_id,
        lead.failed_gates,
        lead.reason,
        lead.warmth_score,
        lead.fit_score,
        lead.owner_id,
        lead.action,
        lead.due_at,
    ).order_by(lead.lead_id)


def _warmth_requests() -> Query:
    """Open warmth checks, grouped per partner, warmest first: each partner's to-answer list."""
    w, pa = WarmthRequest, PartnerAccount
    return (
        select(
            w.partner_id,
            w.partner_account_id,
            pa.name.label("account_name"),
            pa.relationship,
            w.warmth_score,
            w.requested_at,
        )
        .join(
            pa,
            (pa.partner_id == w.partner_id) & (pa.partner_account_id == w.partner_account_id),
        )
        .where(w.status == "open")
        .order_by(w.partner_id, w.warmth_score.desc(), w.partner_account_id)
    )


def _deliveries() -> Query:
    d = Delivery
    return select(
        d.delivery_id,
        d.lead_id,
        d.channel,
        d.recipient,
        d.action,
        d.idempotency_key,
        d.status,
        d.attempts,
        d.last_error,
        d.sent_at,
    ).order_by(d.delivery_id)


def _events() -> Query:
    e = LeadEvent
    return select(
        e.event_id,
        e.lead_id,
        e.kind,
        e.from_status,
        e.to_status,
        e.actor,
        e.at,
        e.detail,
    ).order_by(e.event_id)


def _related() -> Query:
    r = RelatedAccount
    return select(r.account_id, r.partner_id, r.partner_account_id, r.relationship, r.method,
                  r.probability, r.evidence).order_by(r.account_id, r.partner_id,
                                                      r.partner_account_id)


def _share_audit() -> Query:
    a = ShareAudit
    return select(a.audit_id, a.partner_id, a.kind, a.outcome, a.at, a.detail).order_by(
        a.audit_id
    )


EXPORTS: dict[str, Callable[[], Query]] = {
    "overlaps": _overlaps,
    "quarantine": _quarantine,
    "leads": _leads,
    "warmth_requests": _warmth_requests,
    "deliveries": _deliveries,
    "events": _events,
    "related": _related,
    "share_audit": _share_audit,
}


def export_rows(store: Store, table: str) -> Iterator[tuple[Any, ...]]:
    """The header, then every row of an export, streamed from the store."""
    statement = EXPORTS[table]()
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(statement)
        yield tuple(result.keys())
        yield from result


# A spreadsheet runs a cell that starts with one of these as a formula ("=HYPERLINK(...)"), also
# after leading spaces or line breaks and in their full-width forms, and partner files are data
# we did not write: such text is written with a leading apostrophe, which spreadsheets show as
# plain text. A cell starting with a tab or a carriage return is neutralised as well.
FORMULA_STARTS = ("=", "+", "-", "@", "|", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_BLANK_STARTS = ("\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """Return a value as a CSV cell: blank for None, JSON for structures, text never a formula."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if isinstance(value, str) and (
        value.startswith(_BLANK_STARTS) or value.lstrip(" \t\r\n").startswith(FORMULA_STARTS)
    ):
        return "'" + value
    return value


def write_csv(store: Store, table: str, out: IO[str]) -> int:
    """Write one export as CSV to `out`; returns the number of data rows.

    Text that a spreadsheet would run as a formula gets a leading apostrophe (`csv_cell`).
    """
    writer = csv.writer(out)
    rows = export_rows(store, table)
    writer.writerow(next(rows))
    count = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        count += 1
    return count
