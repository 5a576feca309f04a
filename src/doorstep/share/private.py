"""The private overlap online: ECDH private set intersection with a partner's doorstep server.

Neither side hands over its list. The sets are the map stage's canonical keys of each account:
its registrable domain (`d:`) and its normalised name with its country (`n:`). One sync, run by
us (the client) against the partner's `doorstep serve` (the server):

1. We send, per population of ours, our keys blinded with a fresh secret (`openmined-psi`).
2. The partner answers, per population of its own that it shares with us at `counts` or above,
   its keys blinded with its own fresh secret, and our blinded keys raised to it. From these we
   learn which of our own keys are in each of its populations shared at `overlaps` or above,
   and only the size of the intersection for those at `counts`. The partner learns only how
   many keys we sent.
3. For the populations both sides share at `overlaps` or above, we send back only the keys in
   the intersection, and the partner returns, for its records holding them, the fields its
   policy allows. They arrive as that partner's accounts, keyed by its own (opaque) ids and
   carrying the id of our account they matched, so `doorstep map` maps them by shared id.

Nothing of the partner's other records ever reaches us. Guards against probing on the server:
a minimum set size, a limit on syncs per partner per day, refusal of a set whose size moved by
only a few records since the last sync, and an audit row for every exchange on both sides.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import private_set_intersection.python as psi
from sqlalchemy import Connection, delete, func, insert, select, update

from doorstep.config import SHARING_LEVELS
from doorstep.map.normalize import (
    is_non_identifying,
    name_forms,
    normalise_country,
    registrable_domain,
)
from doorstep.share.bundle import (
    BundleReport,
    audit,
    bundle_envelope,
    load_bundle,
    partner_account_rows,
    shared_record,
)
from doorstep.share.identity import ShareError, open_envelope, require_link, seal
from doorstep.share.policy import (
    COUNTS,
    OVERLAPS,
    at_least,
    declared_levels,
    our_populations,
    partner_visibility,
)
from doorstep.store.models import Account, PartnerAccount, PartnerLink, ShareAudit
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

PSI_REQUEST, PSI_RESPONSE = "psi_request", "psi_response"
FIELDS_REQUEST, FIELDS_RESPONSE = "fields_request", "fields_response"
PSI_PATH, FIELDS_PATH = "/api/share/psi", "/api/share/fields"
FALSE_POSITIVE_RATE = 1e-9


AccountRow = tuple[str, str | None, str | None, str | None]


def account_keys(rows: Iterable[AccountRow]) -> dict[str, set[str]]:
    """Canonical keys per account: (account_id, name, website, country) -> {key, ...}."""
    names: dict[str, str | None] = {}
    domains: dict[str, str | None] = {}
    countries: dict[str, str | None] = {}
    keys: dict[str, set[str]] = {}
    for account_id, name, website, country in rows:
        found: set[str] = set()
        if website:
            if website not in domains:
                domains[website] = (None if is_non_identifying(website)
                                    else registrable_domain(website))
            if domains[website]:
                found.add(f"d:{domains[website]}")
        if name:
            if name not in names:
                names[name] = name_forms(name)[0] or None
            code = countries.setdefault(country or "", normalise_country(country) if country
                                        else None)
            if names[name] and code:
                found.add(f"n:{names[name]}|{code}")
        if found:
            keys[account_id] = found
    return keys


def _our_sets(
    conn: Connection, workspace: Workspace
) -> tuple[dict[str, list[str]], dict[str, set[str]], dict[str, list[str]]]:
    """Our keys per population, the accounts holding each key, and each account's populations."""
    populations = our_populations(conn, workspace.config)
    keys = account_keys(conn.execute(
        select(Account.account_id, Account.name, Account.website, Account.country)
    ).tuples())
    by_population: dict[str, set[str]] = defaultdict(set)
    holders: dict[str, set[str]] = defaultdict(set)
    for account_id, found in keys.items():
        for name in populations.get(account_id, []):
            by_population[name] |= found
        for key in found:
            holders[key].add(account_id)
    return {p: sorted(k) for p, k in by_population.items()}, holders, populations


def _b64(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def _parse(kind: type, text: Any) -> Any:
    proto = kind()
    try:
        proto.ParseFromString(base64.b64decode(str(text)))
    except Exception as exc:  # noqa: BLE001 - a damaged message is a user-facing refusal
        raise ShareError("the private-sync message is damaged; run the sync again.") from exc
    return proto


def record_declared(conn: Connection, partner_id: str, levels: Any) -> None:
    """Keep the levels a partner declared in a signed message, for the dual opt-in."""
    if isinstance(levels, dict):
        declared = {str(k): str(v) for k, v in levels.items() if v in SHARING_LEVELS}
        conn.execute(update(PartnerLink).where(PartnerLink.partner_id == partner_id)
                     .values(their_levels=declared))


# --- the server side (a partner runs the sync against our `doorstep serve`) -------------------


def _check_guards(conn: Connection, workspace: Workspace, partner_id: str, size: int,
                  now: datetime) -> None:
    share = workspace.config.share
    if size < share.min_set_size:
        raise ShareError(f"a private sync needs at least {share.min_set_size} keys; "
                         f"this one has {size}.")
    runs = conn.execute(
        select(func.count()).select_from(ShareAudit).where(
            ShareAudit.partner_id == partner_id, ShareAudit.kind == "psi_serve",
            ShareAudit.outcome == "served", ShareAudit.at >= now - timedelta(days=1))
    ).scalar_one()
    if runs >= share.max_syncs_per_day:
        raise ShareError(f"partner {partner_id} already ran {runs} private syncs today "
                         f"(limit {share.max_syncs_per_day}); try again tomorrow.")
    last = conn.execute(
        select(ShareAudit.detail).where(
            ShareAudit.partner_id == partner_id, ShareAudit.kind == "psi_serve",
            ShareAudit.outcome == "served").order_by(ShareAudit.at.desc()).limit(1)
    ).scalar()
    if isinstance(last, dict) and isinstance(last.get("client_set_size"), int):
        moved = abs(size - int(last["client_set_size"]))
        if 0 < moved < share.min_set_change:
            raise ShareError(f"this set differs from the last sync's by only {moved} keys "
                             "(differential probing is refused); sync again once more changed.")


def serve_psi(workspace: Workspace, message: Any, *, now: datetime | None = None
              ) -> dict[str, Any]:
    """Answer a partner's blinded keys for each of our populations we share with it."""
    moment = naive_utc(now)
    max_age = timedelta(seconds=workspace.config.share.max_message_age_seconds)
    refused: tuple[str, ShareError] | None = None
    with workspace.store.engine.begin() as conn:
        opened = open_envelope(workspace, conn, message, kind=PSI_REQUEST, max_age=max_age,
                               now=moment)
        partner_id = opened.partner_id
        requests = dict(opened.body.get("requests") or {})
        size = int(opened.body.get("set_size") or 0)
        try:
            _check_guards(conn, workspace, partner_id, size, moment)
        except ShareError as exc:
            refused = (partner_id, exc)
    if refused is not None:  # the nonce stays spent, and the refusal is audited
        with workspace.store.engine.begin() as conn:
            audit(conn, refused[0], "psi_serve", "refused", {"reason": str(refused[1]),
                                                             "client_set_size": size}, moment)
        raise refused[1]
    with workspace.store.engine.begin() as conn:
        link = require_link(conn, partner_id)
        record_declared(conn, partner_id, opened.body.get("levels"))
        vis = partner_visibility(conn, workspace.config, partner_id)
        sets, _, _ = _our_sets(conn, workspace)
        largest = max([int(r.get("n") or 1) for r in requests.values()] + [1])
        pairs: dict[str, Any] = {}
        for population, keys in sorted(sets.items()):
            level = vis.level(population)
            if not at_least(level, COUNTS):
                continue
            reveal = at_least(level, OVERLAPS)
            server = psi.server.CreateWithNewKey(reveal)
            setup = server.CreateSetupMessage(FALSE_POSITIVE_RATE, largest, keys,
                                              psi.DataStructure.RAW)
            answers = {
                theirs: _b64(server.ProcessRequest(
                    _parse(psi.Request, r["reveal" if reveal else "size"])))
                for theirs, r in sorted(requests.items())
            }
            pairs[population] = {"level": level, "setup": _b64(setup), "responses": answers}
        audit(conn, partner_id, "psi_serve", "served",
              {"client_set_size": size, "populations": sorted(pairs)}, moment)
        body = {"pairs": pairs, "levels": declared_levels(workspace.config, partner_id)}
        return seal(workspace, link.public_key, PSI_RESPONSE, body, now=moment)


def serve_fields(workspace: Workspace, message: Any, *, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Return the allowed fields of our records holding keys the partner found in common."""
    moment = naive_utc(now)
    max_age = timedelta(seconds=workspace.config.share.max_message_age_seconds)
    with workspace.store.engine.begin() as conn:
        opened = open_envelope(workspace, conn, message, kind=FIELDS_REQUEST, max_age=max_age,
                               now=moment)
        partner_id = opened.partner_id
        link = require_link(conn, partner_id)
        vis = partner_visibility(conn, workspace.config, partner_id)
        sets, holders, populations = _our_sets(conn, workspace)
        wanted: dict[str, set[str]] = defaultdict(set)  # our account -> the keys asked for
        asked = dict(opened.body.get("keys") or {})
        for population, keys in asked.items():
            if not at_least(vis.level(str(population)), OVERLAPS):
                continue  # not shared at overlaps: the keys asked for are ignored
            ours = set(sets.get(str(population), []))
            for key in keys if isinstance(keys, list) else []:
                if key in ours:
                    for account_id in holders.get(key, ()):
                        if str(population) in populations.get(account_id, []):
                            wanted[account_id].add(key)
        records = [
            shared_record(workspace, account, populations.get(account.account_id, []),
                          vis.fields, keys=sorted(wanted[account.account_id]))
            for account in conn.execute(
                select(Account).where(Account.account_id.in_(sorted(wanted))))
        ]
        records.sort(key=lambda r: r["id"])
        audit(conn, partner_id, "fields_serve", "served", {"records": len(records)}, moment)
        return seal(workspace, link.public_key, FIELDS_RESPONSE, {"records": records}, now=moment)


# --- the client side (`doorstep share sync --private`) ----------------------------------------


@dataclass
class SyncReport:
    """What a private sync learned: overlap sizes per population pair, records loaded."""

    partner_id: str
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)
    records: int = 0
    our_set_size: int = 0


def server_url(link: Any) -> str:
    """The partner's server address, or ShareError saying how to give one."""
    if not link.url:
        raise ShareError(f"partner {link.partner_id} has no server address; link it again "
                         "with --url set to its `doorstep serve` address.")
    return str(link.url)


def _post(client: httpx.Client, url: str, path: str, message: dict[str, Any]) -> Any:
    try:
        response = client.post(url.rstrip("/") + path, json=message)
    except httpx.HTTPError as exc:
        raise ShareError(f"could not reach the partner's doorstep at {url} ({exc}); check that "
                         "it runs `doorstep serve` and the --url of the link.") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise ShareError(f"the partner's doorstep refused the sync: {detail}")
    return response.json()


def sync_private(
    workspace: Workspace,
    partner_id: str,
    *,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SyncReport:
    """Run the private overlap with a linked partner's server and load what it shares."""
    moment = naive_utc(now)
    max_age = timedelta(seconds=workspace.config.share.max_message_age_seconds)
    with workspace.store.engine.connect() as conn:
        link = require_link(conn, partner_id)
        sets, holders, populations = _our_sets(conn, workspace)
    url = server_url(link)
    report = SyncReport(partner_id, our_set_size=len({k for ks in sets.values() for k in ks}))
    clients = {p: (psi.client.CreateWithNewKey(True), psi.client.CreateWithNewKey(False))
               for p in sets}
    requests = {
        p: {"reveal": _b64(clients[p][0].CreateRequest(keys)),
            "size": _b64(clients[p][1].CreateRequest(keys)), "n": len(keys)}
        for p, keys in sets.items()
    }
    body = {"requests": requests, "set_size": report.our_set_size,
            "levels": declared_levels(workspace.config, partner_id)}
    with httpx.Client(transport=transport, timeout=120) as client:
        try:
            answer = _post(client, url, PSI_PATH,
                           seal(workspace, link.public_key, PSI_REQUEST, body, now=moment))
        except ShareError as exc:
            with workspace.store.engine.begin() as conn:
                audit(conn, partner_id, "psi_sync", "refused", {"reason": str(exc)}, moment)
            raise
        with workspace.store.engine.begin() as conn:
            opened = open_envelope(workspace, conn, answer, kind=PSI_RESPONSE, max_age=max_age,
                                   now=moment)
            record_declared(conn, partner_id, opened.body.get("levels"))
            vis = partner_visibility(conn, workspace.config, partner_id)
        found: dict[str, set[str]] = defaultdict(set)  # their population -> our keys in it
        for theirs, pair in dict(opened.body.get("pairs") or {}).items():
            level = str(pair.get("level"))
            if level not in SHARING_LEVELS:
                continue
            report.levels[theirs] = level
            setup = _parse(psi.ServerSetup, pair.get("setup"))
            for ours, keys in sets.items():
                response = _parse(psi.Response, dict(pair.get("responses") or {}).get(ours))
                reveal, sizer = clients[ours]
                if at_least(level, OVERLAPS):
                    hits = [keys[i] for i in reveal.GetIntersection(setup, response)]
                    report.sizes[(ours, theirs)] = len(hits)
                    # only what we share back at overlaps is asked for by name (dual opt-in)
                    if at_least(vis.level(ours), OVERLAPS):
                        found[theirs] |= set(hits)
                else:
                    report.sizes[(ours, theirs)] = int(sizer.GetIntersectionSize(setup, response))
        records: list[Any] = []
        if found:
            fields = _post(client, url, FIELDS_PATH, seal(
                workspace, link.public_key, FIELDS_REQUEST,
                {"keys": {p: sorted(k) for p, k in found.items()}}, now=moment))
            with workspace.store.engine.begin() as conn:
                opened = open_envelope(workspace, conn, fields, kind=FIELDS_RESPONSE,
                                       max_age=max_age, now=moment)
            records = list(opened.body.get("records") or [])
    _load_synced(workspace, partner_id, records, holders, populations, vis, report, moment)
    return report


def _load_synced(
    workspace: Workspace,
    partner_id: str,
    records: list[Any],
    holders: Mapping[str, set[str]],
    populations: Mapping[str, list[str]],
    vis: Any,
    report: SyncReport,
    now: datetime,
) -> None:
    """Store the partner's intersecting records as its accounts, each naming our account."""
    shaped = []
    for record in records:
        if not isinstance(record, dict):
            continue
        ours = sorted({a for key in record.get("keys") or [] for a in holders.get(key, ())
                       if any(at_least(vis.level(p), OVERLAPS)
                              for p in populations.get(a, []))})
        if not ours:
            continue  # nothing of ours it matches: never stored
        shaped.append({**record, "your_account_id": ours[0]})
    rows = partner_account_rows(partner_id, shaped)
    with workspace.store.engine.begin() as conn:
        conn.execute(delete(PartnerAccount).where(PartnerAccount.partner_id == partner_id))
        if rows:
            conn.execute(insert(PartnerAccount), rows)
        audit(conn, partner_id, "psi_sync", "loaded",
              {"records": len(rows), "our_set_size": report.our_set_size,
               "sizes": {f"{a}|{b}": n for (a, b), n in sorted(report.sizes.items())}}, now)
    report.records = len(rows)


BUNDLE_PATH = "/api/share/bundle"


def sync_bundles(
    workspace: Workspace,
    partner_id: str,
    *,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[BundleReport, BundleReport]:
    """An online exchange of bundles with a linked partner's server: ours out, theirs back."""
    with workspace.store.engine.connect() as conn:
        link = require_link(conn, partner_id)
    url = server_url(link)
    envelope, sent = bundle_envelope(workspace, partner_id, now=now)
    with httpx.Client(transport=transport, timeout=120) as client:
        answer = _post(client, url, BUNDLE_PATH, envelope)
    return sent, load_bundle(workspace, answer, now=now)
