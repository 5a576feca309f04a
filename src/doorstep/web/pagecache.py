"""Answers computed once and sent again while nothing they show has changed.

A signed-in user reloading the dashboard, a rep's queue or an API client polling `/api/leads`
asks for the same page again and again. Each answer is kept, per server process, under its
path and query and everything that decides what its user may see (the user, the session, the
role and scope), with the store's `data_stamp` at the time. It is sent again only while the
stamp is unchanged and for at most `MAX_AGE_SECONDS` (what depends on the clock, such as an
overdue flag, is never older than that). Any change to the data (a stage run, a rep's action, a
partner's answer, a partner's sharing levels) changes the stamp and so renders anew.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from doorstep.store.queries import data_stamp
from doorstep.web.auth import Principal

MAX_AGE_SECONDS = 5.0
MAX_ENTRIES = 2_000
MAX_BODY_BYTES = 512 * 1024
_KEPT_HEADERS = ("content-type", "cache-control")


@dataclass(frozen=True)
class _Entry:
    stamp: tuple[Any, ...]
    at: float
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class PageCache:
    """The last answers of this process, least recently used dropped first."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_entries, self.max_age = max_entries, max_age
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def answer(
        self,
        request: Request,
        principal: Principal,
        build: Callable[[], Response],
    ) -> Response:
        """The cached answer for this request when still true, else `build()`'s (kept)."""
        if self.max_age <= 0:
            return build()
        key = (request.url.path, str(request.url.query), principal.user_id, principal.via,
               principal.csrf, principal.role, principal.partner_id, principal.rep_id)
        engine = request.app.state.doorstep.workspace.store.engine
        with engine.connect() as conn:
            stamp = data_stamp(conn)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.stamp == stamp and now - entry.at < self.max_age:
                self._entries.move_to_end(key)
                self.hits += 1
                return Response(entry.body, status_code=entry.status,
                                headers=dict(entry.headers))
            self.misses += 1
        response = build()
        body = getattr(response, "body", None)
        if response.status_code == 200 and isinstance(body, bytes) \
                and len(body) <= MAX_BODY_BYTES and "set-cookie" not in response.headers:
            headers = tuple((k, v) for k, v in response.headers.items() if k in _KEPT_HEADERS)
            with self._lock:
                self._entries[key] = _Entry(stamp, now, response.status_code, body, headers)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return response

    def clear(self) -> None:
        """Forget every answer (a change made in this process; other processes see the stamp)."""
        with self._lock:
            self._entries.clear()
