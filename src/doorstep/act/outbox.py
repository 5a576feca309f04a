"""The outbox: motion messages rendered from templates and written to the store exactly once.

Each message has an idempotency key, the SHA-256 of (lead, action, recipient, channel). Writing
is insert-if-absent against the unique key, so re-running a stage never adds a message that is
already there, and the worker and every receiver can deduplicate on the same key. A message is
rendered when it is queued, so a retry sends exactly the text that was queued.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeAlias

import jinja2
from sqlalchemy import Connection, Table, select

from doorstep.config import ConfigError
from doorstep.store.models import Base, Delivery

TEMPLATE_DIR = "templates"
TEMPLATE_SUFFIX = ".j2"

ASSIGNMENT = "assignment"
ESCALATION = "escalation"
# the EQL status written back to the CRM after the assignment (opportunity, won, rejected ...)
CRM_STATUS = "crm_status"

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"
CANCELLED = "cancelled"

_KEY_CHUNK = 5_000
_WRITE_CHUNK = 10_000
_SUBJECT = "Subject:"
_COLUMNS = (
    "lead_id",
    "channel",
    "recipient",
    "action",
    "idempotency_key",
    "status",
    "attempts",
    "last_error",
    "payload",
    "created_at",
    "next_attempt_at",
    "sent_at",
)

# What a template gets: the facts, or a function that builds them only when needed.
Context: TypeAlias = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class Draft:
    """A message to queue: for which lead, what for, to whom, on which channel, with what facts."""

    lead_id: str
    action: str
    recipient: str
    channel: str
    context: Context

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.lead_id, self.action, self.recipient, self.channel)


@dataclass(frozen=True)
class Rendered:
    """A rendered message: its subject line and its text."""

    subject: str
    text: str


def idempotency_key(lead_id: str, action: str, recipient: str, channel: str) -> str:
    """The message's idempotency key: hex SHA-256 of lead, action, recipient and channel."""
    parts = (lead_id, action, recipient.strip().casefold(), channel)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def payload_json(subject: str, text: str, data: Mapping[str, Any]) -> str:
    """A delivery's payload as stored: subject, text and the facts, dates as ISO strings."""
    document = {"subject": subject, "text": text, "data": data}
    return json.dumps(document, default=_json_default, separators=(",", ":"))


# Line breaks and other control characters in a value: a name must not end an email's subject
# line and start its body, or forge lines of the message.
_VALUE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(value: Any) -> Any:
    """A value as a template inserts it: text loses its line breaks and control characters."""
    if isinstance(value, str):
        return _VALUE_CONTROL.sub(" ", value)
    return value


class Templates:
    """The message templates: the workspace's `templates/<name>.j2` first, then doorstep's own."""

    def __init__(self, workspace: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        self.folder = workspace / TEMPLATE_DIR if workspace is not None else None
        if self.folder is not None:
            loaders.append(jinja2.FileSystemLoader(self.folder))
        loaders.append(jinja2.PackageLoader("doorstep.act", TEMPLATE_DIR))
        self.environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text messages, not HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # one run renders from one version of each template
            finalize=one_line,  # values from data never break a line the template did not
        )
        self.loaded: dict[str, jinja2.Template] = {}

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        """Render template `name`; a first line "Subject: ..." becomes the subject."""
        file = f"{name}{TEMPLATE_SUFFIX}"
        try:
            template = self.loaded.get(file)
            if template is None:
                template = self.loaded[file] = self.environment.get_template(file)
            text = template.render(context)
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"no message template {file}; add it to {self.folder}.") from exc
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or file
            raise ConfigError(f"{where}: line {exc.lineno}: {exc.message}.") from exc
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"template {file}: {exc.message}.") from exc
        return split_subject(text)


def split_subject(text: str) -> Rendered:
    """Separate a leading "Subject: ..." line from the text of a rendered message."""
    first, _, rest = text.lstrip("\n").partition("\n")
    if first.startswith(_SUBJECT):
        return Rendered(first[len(_SUBJECT) :].strip(), rest.strip("\n") + "\n")
    return Rendered("", text.strip("\n") + "\n")


def _table() -> Table:
    return Base.metadata.tables[Delivery.__tablename__]


def existing_keys(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Those of `keys` the outbox already holds."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), _KEY_CHUNK):
        chunk = wanted[start : start + _KEY_CHUNK]
        found.update(
            conn.execute(
                select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(chunk))
            ).scalars()
        )
    return found


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _converters(conn: Connection) -> list[Callable[[Any], Any] | None]:
    """One converter per outbox column for the driver: JSON as text, SQLite datetimes as text."""
    converters: list[Callable[[Any], Any] | None] = []
    for name in _COLUMNS:
        if name == "payload":
            converters.append(_json_value)
        elif name.endswith("_at") and conn.dialect.name == "sqlite":
            cache: dict[datetime, str] = {}

            def sqlite_datetime(value: Any, cache: dict[datetime, str] = cache) -> Any:
                # SQLAlchemy's SQLite storage format, so the ORM reads these back as datetimes.
                if not isinstance(value, datetime):
                    return value
                text = cache.get(value)
                if text is None:
                    text = cache[value] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
                return text

            converters.append(sqlite_datetime)
        else:
            converters.append(None)
    return converters


def _insert_if_absent(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert outbox rows, skipping any whose idempotency key is already there.

    Straight to the driver, like `track.events.bulk_write`: SQLAlchemy's per-row processing
    costs more than the database at 100k messages. A JSON payload may come as text already.
    """
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(_table().name)} ({', '.join(quote(c) for c in _COLUMNS)}) "
        f"VALUES ({', '.join(mark for _ in _COLUMNS)}) "
        f"ON CONFLICT ({quote('idempotency_key')}) DO NOTHING"
    )
    converters = _converters(conn)
    for start in range(0, len(rows), _WRITE_CHUNK):
        chunk = rows[start : start + _WRITE_CHUNK]
        columns = [
            [r.get(c) for r in chunk] if convert is None else [convert(r.get(c)) for r in chunk]
            for c, convert in zip(_COLUMNS, converters, strict=True)
        ]
        conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def enqueue(
    conn: Connection, drafts: Iterable[Draft], templates: Templates, *, now: datetime
) -> list[Draft]:
    """Queue every draft the outbox does not hold yet, in the caller's transaction.

    Only new drafts are rendered (template = the draft's action), once per lead, action and
    recipient whatever the channels; returns the drafts queued.
    """
    unique: dict[str, Draft] = {}
    for draft in drafts:
        unique.setdefault(draft.idempotency_key, draft)
    have = existing_keys(conn, unique)
    new = [d for key, d in unique.items() if key not in have]
    payloads: dict[tuple[str, str, str], str] = {}
    rows = []
    for draft in new:
        message = (draft.lead_id, draft.action, draft.recipient)
        payload = payloads.get(message)
        if payload is None:
            context = draft.context() if callable(draft.context) else draft.context
            rendered = templates.render(draft.action, context)
            payload = payloads[message] = payload_json(rendered.subject, rendered.text, context)
        rows.append(
            {
                "lead_id": draft.lead_id,
                "channel": draft.channel,
                "recipient": draft.recipient,
                "action": draft.action,
                "idempotency_key": draft.idempotency_key,
                "status": PENDING,
                "attempts": 0,
                "payload": payload,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    _insert_if_absent(conn, rows)
    return new


def cancel_pending(conn: Connection, lead_ids: Sequence[str], *, reason: str) -> int:
    """Cancel the lead's messages not yet sent (those being sent go on); returns how many."""
    if not lead_ids:
        return 0
    table = _table()
    result = conn.execute(
        table.update()
        .where(table.c.lead_id.in_(list(lead_ids)), table.c.status == PENDING)
        .values(status=CANCELLED, last_error=reason)
    )
    return int(result.rowcount or 0)
