"""This install's Ed25519 identity, linked partner installs, and signed messages between them.

Every message between installs is an envelope: who sent it, to whom, when, a nonce and what it
says, signed by the sender. `open_envelope` refuses a message that is altered, from a key we
have not linked, meant for another install, too old, or seen before, in one sentence each, and
records its nonce so a replay is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, delete, insert, select, update

from doorstep.store.models import Partner, PartnerLink, ShareNonce
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

KEY_PREFIX = "doorstep-ed25519:"
KEY_FILE = Path("keys") / "ed25519.pem"
VERSION = 1


class ShareError(ValueError):
    """An exchange that cannot go ahead; the message is one sentence saying why and what to do."""


def _key_path(workspace: Workspace) -> Path:
    return workspace.path / KEY_FILE


def private_key(workspace: Workspace) -> Ed25519PrivateKey:
    """This install's private key, created on first use in a file only its owner can read."""
    path = _key_path(workspace)
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ShareError(f"{path} is not an Ed25519 key; move it away and run again.")
        return loaded
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """A public key as one line: doorstep-ed25519:<base64url of the 32 raw bytes>."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The public key a `doorstep partner key` line holds; ShareError when it is not one."""
    value = text.strip()
    if not value.startswith(KEY_PREFIX):
        raise ShareError(
            f"{value[:40]!r} is not a doorstep key; paste the line `doorstep partner key` prints."
        )
    body = value[len(KEY_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ShareError("that doorstep key is damaged; copy the whole line again.") from exc


def own_public_key(workspace: Workspace) -> str:
    """This install's public key line (creating the key pair on first use)."""
    return public_key_text(private_key(workspace).public_key())


def opaque_id(workspace: Workspace, account_id: str) -> str:
    """A stable id for one of our accounts that tells a partner nothing about our own ids."""
    seed = private_key(workspace).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(seed + b"account:" + account_id.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Link:
    """A linked partner install."""

    partner_id: str
    public_key: str
    url: str | None
    their_levels: dict[str, str] | None
    bundle_id: str | None
    bundle_at: datetime | None


def link_partner(
    workspace: Workspace, partner_id: str, key: str, url: str | None = None,
    *, now: datetime | None = None,
) -> Link:
    """Record a partner install's public key (and server address); re-linking updates them."""
    parse_public_key(key)
    if key.strip() == own_public_key(workspace):
        raise ShareError("that is this install's own key; paste the key the partner sent you.")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ShareError(f"--url {url!r} is not an http(s) address; give the partner's "
                         "doorstep serve address, e.g. https://doorstep.partner.example.")
    moment = naive_utc(now)
    with workspace.store.engine.begin() as conn:
        other = conn.execute(
            select(PartnerLink.partner_id).where(PartnerLink.public_key == key.strip(),
                                                 PartnerLink.partner_id != partner_id)
        ).first()
        if other is not None:
            raise ShareError(f"that key is already linked to partner {other[0]}; "
                             "each partner install has its own key.")
        row = conn.execute(select(PartnerLink).where(PartnerLink.partner_id == partner_id)).first()
        if row is None:
            conn.execute(insert(PartnerLink).values(
                partner_id=partner_id, public_key=key.strip(), url=url, their_levels=None,
                linked_at=moment,
            ))
        else:
            conn.execute(update(PartnerLink)
                         .where(PartnerLink.partner_id == partner_id)
                         .values(public_key=key.strip(), url=url or row.url, linked_at=moment))
        if conn.execute(select(Partner.partner_id).where(Partner.partner_id == partner_id)) \
                .first() is None:
            conn.execute(insert(Partner).values(
                partner_id=partner_id, name=partner_id, partner_manager_id=None,
                contact_email=None, attributes={"linked": True}, row_hash="linked",
            ))
    found = get_link(workspace, partner_id)
    assert found is not None
    return found


def get_link(workspace: Workspace, partner_id: str) -> Link | None:
    """The linked install of one partner, or None."""
    with workspace.store.engine.connect() as conn:
        return _link(conn, partner_id)


def _link(conn: Connection, partner_id: str) -> Link | None:
    row = conn.execute(select(PartnerLink).where(PartnerLink.partner_id == partner_id)).first()
    if row is None:
        return None
    return Link(row.partner_id, row.public_key, row.url, row.their_levels, row.bundle_id,
                row.bundle_at)


def require_link(conn: Connection, partner_id: str) -> Link:
    """The partner's link, or ShareError saying how to make one."""
    found = _link(conn, partner_id)
    if found is None:
        raise ShareError(
            f"partner {partner_id} is not linked; run `doorstep partner link PATH --partner "
            f"{partner_id} --key KEY` with the key its `doorstep partner key` prints."
        )
    return found


# --- envelopes -------------------------------------------------------------------------------


def _canonical(message: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in message.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), default=str).encode()


def seal(
    workspace: Workspace, to_key: str, kind: str, body: dict[str, Any],
    *, now: datetime | None = None,
) -> dict[str, Any]:
    """A signed envelope from this install to the install with `to_key`."""
    key = private_key(workspace)
    message: dict[str, Any] = {
        "v": VERSION,
        "kind": kind,
        "from": public_key_text(key.public_key()),
        "to": to_key,
        "at": naive_utc(now).isoformat(timespec="seconds"),
        "nonce": secrets.token_hex(16),
        "body": body,
    }
    message["sig"] = base64.b64encode(key.sign(_canonical(message))).decode("ascii")
    return message


@dataclass(frozen=True)
class Opened:
    """A verified envelope: which partner sent it, when, and what it says."""

    partner_id: str
    kind: str
    at: datetime
    body: dict[str, Any]
    nonce: str
    seen_before: bool = False


def open_envelope(
    workspace: Workspace,
    conn: Connection,
    message: Any,
    *,
    kind: str,
    max_age: timedelta | None,
    now: datetime | None = None,
    seen_ok: bool = False,
) -> Opened:
    """Verify an envelope and record its nonce in `conn`'s transaction; ShareError if refused.

    `max_age` None accepts any age (an offline bundle), but never a future time. With
    `seen_ok`, a message seen before is returned marked `seen_before` instead of refused (the
    caller decides: the same bundle loaded twice changes nothing).
    """
    if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
        raise ShareError("that is not a doorstep message; ask the partner to send it again.")
    if message.get("v") != VERSION or message.get("kind") != kind:
        raise ShareError(f"that message is a {message.get('kind')!r}, not a {kind!r}.")
    if message.get("to") != own_public_key(workspace):
        raise ShareError("that message is addressed to another install; it was not sent to us.")
    sender = str(message.get("from") or "")
    row = conn.execute(
        select(PartnerLink.partner_id).where(PartnerLink.public_key == sender)
    ).first()
    if row is None:
        raise ShareError("that message is signed by a key no partner is linked with; link the "
                         "partner with `doorstep partner link` first.")
    try:
        parse_public_key(sender).verify(base64.b64decode(str(message.get("sig") or "")),
                                        _canonical(message))
    except (InvalidSignature, ValueError) as exc:
        raise ShareError("that message's signature does not match its content: it was altered "
                         "or damaged; nothing was changed.") from exc
    try:
        at = datetime.fromisoformat(str(message["at"]))
    except (KeyError, ValueError) as exc:
        raise ShareError("that message has no valid time; nothing was changed.") from exc
    moment = naive_utc(now)
    if at > moment + timedelta(minutes=5):
        raise ShareError("that message is dated in the future; check both machines' clocks.")
    if max_age is not None and moment - at > max_age:
        raise ShareError(f"that message is stale (sent {at.isoformat()}); send it again.")
    nonce = str(message.get("nonce") or "")
    if len(nonce) < 16:
        raise ShareError("that message has no nonce; nothing was changed.")
    if conn.execute(select(ShareNonce.nonce).where(ShareNonce.nonce == nonce)).first():
        if seen_ok:
            return Opened(row[0], kind, at, dict(message["body"]), nonce, seen_before=True)
        raise ShareError("that message was already received once: a replay is refused.")
    conn.execute(insert(ShareNonce).values(nonce=nonce, partner_id=row[0],
                                                      seen_at=moment))
    conn.execute(delete(ShareNonce).where(ShareNonce.seen_at < moment - timedelta(days=400)))
    return Opened(row[0], kind, at, dict(message["body"]), nonce)
