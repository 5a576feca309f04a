"""Offline exchange: a signed bundle holding only what the sharing level in force allows.

`export_bundle` writes, for one linked partner, the levels we declare, the count of overlaps
per population shared at `counts` or above, and records for populations at `overlaps` (only
accounts that overlap the partner's, with the allowed fields) or `full` (every account of the
population). Our account ids never leave: records carry an opaque id, and the partner's own
account id where we matched one, so the partner's map stage matches them exactly.

`import_bundle` verifies a bundle and loads it, in one transaction, as that partner's accounts
(replacing the ones an older bundle brought). The same bundle again changes nothing; an older
one is refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from doorstep.share.identity import (
    ShareError,
    opaque_id,
    open_envelope,
    require_link,
    seal,
)
from doorstep.share.policy import (
    COUNTS,
    FULL,
    OVERLAPS,
    PROSPECTS,
    at_least,
    declared_levels,
    our_populations,
    partner_visibility,
)
from doorstep.store.models import Account, Overlap, PartnerAccount, PartnerLink, ShareAudit
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

BUNDLE = "bundle"
# Fields a level above `counts` may reveal besides the match itself.
SHAREABLE_FIELDS = ("name", "website", "country", "industry", "employees", "relationship")
RELATIONSHIP_OF = {"customers": "customer", "open_opportunities": "opportunity",
                   PROSPECTS: "prospect"}


def audit(conn: Connection, partner_id: str, kind: str, outcome: str, detail: dict[str, Any],
          now: datetime) -> None:
    """One audit row per exchange: counts and ids of the exchange only, never records."""
    conn.execute(insert(ShareAudit).values(
        partner_id=partner_id, kind=kind, outcome=outcome, at=now, detail=detail))


@dataclass
class BundleReport:
    """What a bundle held or loaded: records and counts per population, and the levels."""

    partner_id: str
    bundle_id: str
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)
    changed: bool = True
    replaced: int = 0


def shared_record(
    workspace: Workspace, account: Any, populations: list[str], fields: Iterable[str],
    **extra: Any,
) -> dict[str, Any]:
    """One of our accounts as a partner may receive it: an opaque id, its populations, the
    allowed fields (relationship as our own relationship with it), and `extra`."""
    record: dict[str, Any] = {"id": opaque_id(workspace, account.account_id),
                              "populations": populations, **extra}
    for name in fields:
        if name not in SHAREABLE_FIELDS:
            continue
        record[name] = (
            RELATIONSHIP_OF.get(populations[0], "prospect") if name == "relationship"
            else getattr(account, name)
        )
    return record


def bundle_content(workspace: Workspace, conn: Connection, partner_id: str) -> dict[str, Any]:
    """What we may send this partner now, as the body of a bundle."""
    config = workspace.config
    vis = partner_visibility(conn, config, partner_id)
    populations = our_populations(conn, config)
    matched: dict[str, str] = {}
    for account_id, partner_account_id in conn.execute(
        select(Overlap.account_id, Overlap.partner_account_id)
        .where(Overlap.partner_id == partner_id)
        .order_by(Overlap.account_id, Overlap.probability.desc(), Overlap.partner_account_id)
    ):
        matched.setdefault(account_id, partner_account_id)
    counts: Counter[str] = Counter()
    wanted: dict[str, list[str]] = {}
    for account_id, names in populations.items():
        level = vis.level_of(names)
        if account_id in matched and at_least(level, COUNTS):
            for name in names:
                if at_least(vis.level(name), COUNTS):
                    counts[name] += 1
        if level == FULL or (level == OVERLAPS and account_id in matched):
            wanted[account_id] = names
    records = []
    ids = sorted(wanted)
    for start in range(0, len(ids), 5_000):
        chunk = ids[start:start + 5_000]
        for account in conn.execute(select(Account).where(Account.account_id.in_(chunk))):
            matched_id = matched.get(account.account_id)
            extra = {"your_account_id": matched_id} if matched_id is not None else {}
            records.append(shared_record(workspace, account, wanted[account.account_id],
                                         vis.fields, **extra))
    records.sort(key=lambda r: r["id"])
    shared_counts = {name: counts.get(name, 0) for name, level in vis.levels.items()
                     if at_least(level, COUNTS)}
    return {
        "levels": declared_levels(config, partner_id),
        "in_force": vis.levels,
        "counts": shared_counts,
        "records": records,
    }


def bundle_envelope(
    workspace: Workspace, partner_id: str, *, now: datetime | None = None
) -> tuple[dict[str, Any], BundleReport]:
    """A signed bundle for a linked partner, holding what the level in force allows."""
    moment = naive_utc(now)
    with workspace.store.engine.begin() as conn:
        link = require_link(conn, partner_id)
        body = bundle_content(workspace, conn, partner_id)
        body["bundle_id"] = secrets.token_hex(12)
        envelope = seal(workspace, link.public_key, BUNDLE, body, now=moment)
        report = BundleReport(partner_id, body["bundle_id"], len(body["records"]),
                              body["counts"], body["in_force"])
        audit(conn, partner_id, "bundle_export", "sent",
              {"bundle_id": body["bundle_id"], "records": report.records,
               "counts": report.counts}, moment)
    return envelope, report


def export_bundle(
    workspace: Workspace, partner_id: str, out: Path, *, now: datetime | None = None
) -> BundleReport:
    """Write a signed bundle for a linked partner to `out`."""
    envelope, report = bundle_envelope(workspace, partner_id, now=now)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(envelope, indent=1, sort_keys=True, default=str) + "\n",
                   encoding="utf-8")
    return report


def read_message(path: Path) -> Any:
    """A message file as JSON; ShareError naming the file when it is not one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ShareError(f"{path} does not exist; give the bundle file the partner sent.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShareError(f"{path} is not a doorstep bundle (not JSON); ask the partner to "
                         "export it again.") from exc


def _row_hash(record: dict[str, Any]) -> str:
    return hashlib.md5(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def partner_account_rows(partner_id: str, records: list[Any]) -> list[dict[str, Any]]:
    """A partner's shared records as rows of `partner_accounts` (its ids, our account ids
    where it matched them, so our map matches them by shared id)."""
    rows = []
    for record in records:
        if not isinstance(record, dict) or not record.get("id"):
            raise ShareError("the bundle holds a record without an id; ask the partner to "
                             "export it again.")
        relationship = str(record.get("relationship") or "").strip().lower()
        if relationship not in ("customer", "opportunity", "prospect"):
            relationship = "prospect"
        attributes: dict[str, Any] = {"shared_by_partner": True,
                                      "populations": record.get("populations") or []}
        if record.get("your_account_id"):
            attributes["account_id"] = str(record["your_account_id"])
        for extra in ("industry", "employees"):
            if record.get(extra) is not None:
                attributes[extra] = record[extra]
        rows.append({
            "partner_id": partner_id,
            "partner_account_id": str(record["id"]),
            "name": str(record.get("name") or f"account {record['id'][:8]} of {partner_id}"),
            "relationship": relationship,
            "website": record.get("website"),
            "country": record.get("country"),
            "attributes": attributes,
            "row_hash": _row_hash(record),
        })
    return rows


def import_bundle(
    workspace: Workspace, path: Path, *, now: datetime | None = None
) -> BundleReport:
    """Verify a bundle file and load it as its partner's accounts; ShareError (nothing
    changed) when it is refused."""
    return load_bundle(workspace, read_message(path), now=now)


def load_bundle(
    workspace: Workspace, message: Any, *, now: datetime | None = None
) -> BundleReport:
    """Verify a bundle message and load it as its partner's accounts, in one transaction."""
    moment = naive_utc(now)
    with workspace.store.engine.begin() as conn:
        opened = open_envelope(workspace, conn, message, kind=BUNDLE, max_age=None, now=moment,
                               seen_ok=True)
        body, partner_id = opened.body, opened.partner_id
        link = require_link(conn, partner_id)
        bundle_id = str(body.get("bundle_id") or "")
        report = BundleReport(partner_id, bundle_id, len(body.get("records") or []),
                              dict(body.get("counts") or {}), dict(body.get("in_force") or {}))
        if opened.seen_before:
            if bundle_id and bundle_id == link.bundle_id:
                report.changed = False  # the same bundle again: already loaded
                return report
            raise ShareError("that bundle was already received once and a newer one is loaded; "
                             "nothing changed.")
        if link.bundle_at is not None and opened.at < link.bundle_at:
            raise ShareError(f"that bundle ({opened.at.isoformat()}) is older than the one "
                             f"already loaded ({link.bundle_at.isoformat()}); nothing changed.")
        rows = partner_account_rows(partner_id, list(body.get("records") or []))
        replaced = conn.execute(
            delete(PartnerAccount).where(PartnerAccount.partner_id == partner_id)
        ).rowcount
        if rows:
            conn.execute(insert(PartnerAccount), rows)
        levels = {str(k): str(v) for k, v in dict(body.get("levels") or {}).items()}
        conn.execute(update(PartnerLink).where(PartnerLink.partner_id == partner_id).values(
            their_levels=levels, bundle_id=bundle_id, bundle_at=opened.at))
        audit(conn, partner_id, "bundle_import", "loaded",
              {"bundle_id": bundle_id, "records": len(rows), "counts": report.counts}, moment)
        report.replaced = int(replaced or 0)
    return report


def exchange_bundles(
    workspace: Workspace, message: Any, *, now: datetime | None = None
) -> dict[str, Any]:
    """The server side of an online exchange: load the partner's bundle, answer with ours."""
    report = load_bundle(workspace, message, now=now)
    envelope, _ = bundle_envelope(workspace, report.partner_id, now=now)
    return envelope
