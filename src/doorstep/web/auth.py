"""Users, passwords, API tokens and sessions: who is asking, and what their role lets them see.

Passwords are kept as argon2 hashes. API tokens are random, shown once, and kept only as their
SHA-256 (a token has 256 bits of entropy, so a fast hash is safe and makes each check cheap).
Sessions live in a signed cookie that names the user and carries a CSRF token; a session is only
good while the user is active and their session stamp has not changed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Connection, delete, func, insert, select, update

from doorstep.store import Store
from doorstep.store.models import ApiToken, Partner, Rep, SignInThrottle, User

ADMIN = "admin"
PARTNER_MANAGER = "partner_manager"
REP = "rep"
PARTNER = "partner"
ROLES = (ADMIN, PARTNER_MANAGER, REP, PARTNER)
STAFF = (ADMIN, PARTNER_MANAGER)

SECRET_ENV = "DOORSTEP_SECRET_KEY"
SECRET_FILE = ".doorstep-secret"
PASSWORD_MIN_CHARS = 10
TOKEN_PREFIX = "dst_"
SESSION_MAX_AGE = 12 * 3600
_TOKEN_TOUCH = timedelta(minutes=5)  # write last_used_at at most this often per token
# After this many failed sign-ins in a row, an account's sign-in is locked for SIGN_IN_LOCK.
MAX_FAILED_SIGN_INS = 5
# After this many failed sign-ins from one client, against any emails, it is locked out too.
MAX_CLIENT_FAILURES = 20
SIGN_IN_LOCK = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user or token request that cannot be done; the message says why."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request, how they signed in, and their session's CSRF token."""

    user_id: int
    email: str
    role: str
    partner_id: str | None
    rep_id: str | None
    via: str  # "session" or "token"
    csrf: str | None = None

    @property
    def is_staff(self) -> bool:
        """Admins and partner managers see every partner and every lead."""
        return self.role in STAFF


@dataclass(frozen=True)
class UserRecord:
    """A user as the settings page lists them."""

    user_id: int
    email: str
    role: str
    partner_id: str | None
    rep_id: str | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_email(email: str) -> str:
    """An email as users are keyed by: trimmed and lower-case; UserError when it is not one."""
    cleaned = email.strip().lower()
    local, _, domain = cleaned.partition("@")
    if not local or not domain or " " in cleaned:
        raise UserError(f"{email!r} is not an email address.")
    return cleaned


def hash_password(password: str) -> str:
    """The argon2 hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches the argon2 `password_hash`."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_scope(store: Store, role: str, partner_id: str | None, rep_id: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of: {', '.join(ROLES)}.")
    if role == PARTNER and not partner_id:
        raise UserError("a partner user needs --partner PARTNER_ID.")
    if role == REP and not rep_id:
        raise UserError("a rep user needs --rep REP_ID.")
    if partner_id and role != PARTNER:
        raise UserError(f"--partner is only for partner users, not {role}.")
    if rep_id and role != REP:
        raise UserError(f"--rep is only for rep users, not {role}.")
    with store.engine.connect() as conn:
        if partner_id and conn.execute(
            select(Partner.partner_id).where(Partner.partner_id == partner_id)
        ).first() is None:
            raise UserError(f"there is no partner {partner_id} in the store; import it first.")
        if rep_id and conn.execute(select(Rep.rep_id).where(Rep.rep_id == rep_id)).first() is None:
            raise UserError(f"there is no rep {rep_id} in the store; import it first.")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of leaked lists, as zxcvbn ships them (offline)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str = "") -> None:
    """Refuse a password that is short, one of the most common ones, or the user's email."""
    if len(password) < PASSWORD_MIN_CHARS:
        raise UserError(f"the password must have at least {PASSWORD_MIN_CHARS} characters.")
    folded = password.strip().casefold()
    if folded in _common_passwords():
        raise UserError("that password is one of the most common ones and the first an attacker "
                        "tries; choose another (a few unrelated words work well).")
    if email and folded in {email.casefold(), email.casefold().partition("@")[0]}:
        raise UserError("the password must not be the user's email; choose another.")


def add_user(
    store: Store,
    email: str,
    role: str,
    password: str,
    *,
    partner_id: str | None = None,
    rep_id: str | None = None,
) -> tuple[UserRecord, bool]:
    """Create the user, or update the role, scope and password of an existing one.

    Returns the user and whether it is new; changing a user ends their open sessions.
    """
    address = normalise_email(email)
    _check_scope(store, role, partner_id, rep_id)
    check_password(password, address)
    values: dict[str, Any] = {
        "password_hash": hash_password(password),
        "role": role,
        "partner_id": partner_id or None,
        "rep_id": rep_id or None,
        "active": True,
        "session_stamp": secrets.token_hex(16),
    }
    with store.engine.begin() as conn:
        existing = conn.execute(select(User.user_id).where(User.email == address)).scalar()
        if existing is None:
            conn.execute(insert(User).values(email=address, created_at=_now(), **values))
        else:
            conn.execute(update(User).where(User.user_id == existing).values(**values))
            # a new password ends every token the old one could have leaked with
            _revoke_tokens(conn, existing)
    record = find_user(store, address)
    assert record is not None
    return record, existing is None


def find_user(store: Store, email: str) -> UserRecord | None:
    """The user with this email, if any."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(User.user_id, User.email, User.role, User.partner_id, User.rep_id,
                   User.active, User.created_at, User.last_login_at)
            .where(User.email == email.strip().lower())
        ).first()
    return UserRecord(*row) if row is not None else None


def list_users(store: Store, *, offset: int = 0, limit: int = 100) -> list[UserRecord]:
    """One page of users, by email."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(User.user_id, User.email, User.role, User.partner_id, User.rep_id,
                   User.active, User.created_at, User.last_login_at)
            .order_by(User.email)
            .offset(offset)
            .limit(limit)
        )
        return [UserRecord(*row) for row in rows]


def set_active(store: Store, email: str, active: bool) -> None:
    """Activate or deactivate a user; deactivating ends their sessions and tokens for good (a
    reactivated user signs in again and asks for new tokens)."""
    with store.engine.begin() as conn:
        user_id = _user_id(conn, email)
        conn.execute(update(User).where(User.user_id == user_id)
                     .values(active=active, session_stamp=secrets.token_hex(16)))
        if not active:
            _revoke_tokens(conn, user_id)


def _user_id(conn: Connection, email: str) -> int:
    """The id of the user with this email, or a user error naming the email."""
    user_id = conn.execute(
        select(User.user_id).where(User.email == normalise_email(email))).scalar()
    if user_id is None:
        raise UserError(f"there is no user {email}; `doorstep user list` shows who there is.")
    return int(user_id)


def _revoke_tokens(conn: Connection, user_id: int) -> int:
    """Revoke every live token of a user, in the caller's transaction; returns how many."""
    result = conn.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    return int(result.rowcount or 0)


def revoke_access(store: Store, email: str) -> int:
    """End every session and API token of a user at once; returns how many tokens were live.

    The user stays and may sign in again; revoked tokens never work again.
    """
    with store.engine.begin() as conn:
        user_id = _user_id(conn, email)
        conn.execute(update(User).where(User.user_id == user_id)
                     .values(session_stamp=secrets.token_hex(16)))
        return _revoke_tokens(conn, user_id)


def remove_user(store: Store, email: str) -> None:
    """Remove a user: their sessions end and their tokens go with them."""
    with store.engine.begin() as conn:
        user_id = _user_id(conn, email)
        conn.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        conn.execute(delete(User).where(User.user_id == user_id))


def end_sessions(store: Store, user_id: int) -> None:
    """End every session of a user (signing out): the stamp they were signed with changes."""
    with store.engine.begin() as conn:
        conn.execute(update(User).where(User.user_id == user_id)
                     .values(session_stamp=secrets.token_hex(16)))


def live_tokens(store: Store) -> dict[int, int]:
    """How many live API tokens each user has, by user id."""
    with store.engine.connect() as conn:
        return {int(u): int(n) for u, n in conn.execute(
            select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None))
            .group_by(ApiToken.user_id))}


def token_hash(token: str) -> str:
    """The stored form of an API token: its hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(store: Store, email: str) -> str:
    """A new API token for the user; only its hash is kept, so this is the one time it is seen."""
    user = find_user(store, email)
    if user is None:
        raise UserError(f"there is no user {email}; add one with `doorstep user add`.")
    if not user.active:
        raise UserError(f"user {email} is deactivated.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                user_id=user.user_id,
                token_hash=token_hash(token),
                prefix=token[: len(TOKEN_PREFIX) + 6],
                created_at=_now(),
            )
        )
    return token


def revoke_tokens(store: Store, email: str) -> int:
    """Revoke every API token of the user; returns how many were live."""
    user = find_user(store, email)
    if user is None:
        raise UserError(f"there is no user {email}.")
    with store.engine.begin() as conn:
        return _revoke_tokens(conn, user.user_id)


def _principal(row: Any, via: str, csrf: str | None = None) -> Principal:
    return Principal(row.user_id, row.email, row.role, row.partner_id, row.rep_id, via, csrf)


_USER_COLUMNS = (User.user_id, User.email, User.role, User.partner_id, User.rep_id,
                 User.session_stamp, User.active, User.password_hash)


def principal_for_token(store: Store, token: str) -> Principal | None:
    """The user an API token belongs to, if the token is live and the user active."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_hash(token)
    now = _now()
    with store.engine.connect() as conn:
        row = conn.execute(
            select(*_USER_COLUMNS, ApiToken.token_id, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.user_id)
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None),
                   User.active.is_(True))
        ).first()
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at > _TOKEN_TOUCH:
        with store.engine.begin() as conn:
            conn.execute(
                update(ApiToken).where(ApiToken.token_id == row.token_id).values(last_used_at=now)
            )
    return _principal(row, "token")


class SignInLocked(Exception):
    """Too many failed sign-ins from this client: it cannot sign in until `until` (UTC)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(
            f"too many failed sign-ins from here: try again after {until:%H:%M} UTC, "
            "or ask an admin to run `doorstep user unlock`"
        )
        self.until = until


def _throttle_rows(conn: Connection, client: str, address: str) -> list[Any]:
    t = SignInThrottle
    return list(conn.execute(
        select(t.email, t.failures, t.last_failure_at, t.locked_until).where(
            t.client == client, t.email.in_(["", address])
        )
    ))


def authenticate(
    store: Store,
    email: str,
    password: str,
    now: datetime | None = None,
    *,
    client: str = "local",
) -> tuple[Principal, str] | None:
    """The user and their session stamp when email and password match an active user.

    Failures count per client: `MAX_FAILED_SIGN_INS` in a row against one email, or
    `MAX_CLIENT_FAILURES` against any, refuse that client for `SIGN_IN_LOCK` (SignInLocked),
    even with the right password. Other clients are not affected, so nobody can lock another
    person out. A known and an unknown email get the same answers, after the same work: one
    password hash checked and one throttle row written.
    """
    address = email.strip().lower()
    now = now or _now()
    with store.engine.connect() as conn:
        throttles = _throttle_rows(conn, client, address)
        row = conn.execute(select(*_USER_COLUMNS).where(User.email == address)).first()
    locked = [t.locked_until for t in throttles if t.locked_until and t.locked_until > now]
    if locked:
        verify_password(_DUMMY_HASH, password)  # as long as any other answer
        raise SignInLocked(max(locked))
    if row is None or not row.active:
        verify_password(_DUMMY_HASH, password)  # as long as checking a real password
        _count_failure(store, client, address, now)
        return None
    if not verify_password(row.password_hash, password):
        _count_failure(store, client, address, now)
        return None
    values: dict[str, Any] = {"last_login_at": now}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    with store.engine.begin() as conn:
        conn.execute(update(User).where(User.user_id == row.user_id).values(**values))
        conn.execute(delete(SignInThrottle).where(
            SignInThrottle.client == client, SignInThrottle.email == address
        ))
    return _principal(row, "session"), row.session_stamp


def _count_failure(store: Store, client: str, address: str, now: datetime) -> None:
    """Count a failed sign-in against (client, email) and against the client; past either
    limit, lock that client out for SIGN_IN_LOCK and raise SignInLocked."""
    until = now + SIGN_IN_LOCK
    locked = False
    with store.engine.begin() as conn:
        rows = {t.email: t for t in _throttle_rows(conn, client, address)}
        for key, limit in ((address, MAX_FAILED_SIGN_INS), ("", MAX_CLIENT_FAILURES)):
            old = rows.get(key)
            # a run of failures ends with a lock that ran out or a quiet SIGN_IN_LOCK
            if old is None or old.locked_until is not None or (
                now - old.last_failure_at > SIGN_IN_LOCK
            ):
                failures = 1
            else:
                failures = old.failures + 1
            values = {"failures": failures, "last_failure_at": now,
                      "locked_until": until if failures >= limit else None}
            locked = locked or failures >= limit
            if old is None:
                conn.execute(insert(SignInThrottle).values(client=client, email=key, **values))
            else:
                conn.execute(update(SignInThrottle).where(
                    SignInThrottle.client == client, SignInThrottle.email == key
                ).values(**values))
    if locked:
        raise SignInLocked(until)


def unlock_user(store: Store, email: str) -> None:
    """Clear the failed sign-ins against an account, from every client."""
    address = normalise_email(email)
    with store.engine.begin() as conn:
        known = conn.execute(select(User.user_id).where(User.email == address)).first()
        if known is None:
            raise UserError(f"no user {address}; `doorstep user add` creates one")
        conn.execute(delete(SignInThrottle).where(SignInThrottle.email == address))


def principal_for_session(
    store: Store, user_id: int, stamp: str, csrf: str | None
) -> Principal | None:
    """The user a session names, if they are still active and the session stamp still holds."""
    with store.engine.connect() as conn:
        row = conn.execute(select(*_USER_COLUMNS).where(User.user_id == user_id)).first()
    if row is None or not row.active or not hmac.compare_digest(row.session_stamp, stamp):
        return None
    return _principal(row, "session", csrf)


def count_users(store: Store) -> int:
    """How many users there are."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(User)).scalar_one())


# --- the session cookie ----------------------------------------------------------------------


def session_secret(workspace: Path) -> str:
    """The key sessions are signed with: DOORSTEP_SECRET_KEY, else a random one kept in the
    workspace (file .doorstep-secret, readable by its owner only)."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    path = workspace / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


class SessionCodec:
    """Signs and checks the session cookie's contents (user id, session stamp, CSRF token)."""

    def __init__(self, secret: str, max_age: int = SESSION_MAX_AGE) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="doorstep-session")
        self.max_age = max_age

    def dump(self, data: dict[str, Any]) -> str:
        """The signed cookie value for `data`."""
        return str(self.serializer.dumps(data))

    def load(self, value: str | None) -> dict[str, Any]:
        """The cookie's data; empty when missing, forged or expired."""
        if not value:
            return {}
        try:
            data = self.serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}


def new_csrf_token() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Whether a submitted CSRF token is the session's, compared in constant time."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
