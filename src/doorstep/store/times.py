"""Times as the store keeps them: naive UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def naive_utc(moment: datetime | None = None) -> datetime:
    """`moment` (default: now) as a naive UTC datetime, as the store keeps times."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
