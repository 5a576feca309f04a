"""Failures outside doorstep's control (the store, the disk, the network), each told in one
sentence with what to do next, instead of a traceback.

`DOORSTEP_DEBUG=1` shows the traceback as well.
"""

from __future__ import annotations

import errno
import os

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

DEBUG_ENV = "DOORSTEP_DEBUG"
_SAFE_TO_RERUN = "every step is one transaction, so re-running the command is safe"


def debugging() -> bool:
    """Whether the user asked to see tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].strip().rstrip(".") if text else type(exc).__name__


def _os_failure(exc: OSError) -> str | None:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}: free some space, then re-run; {_SAFE_TO_RERUN}."
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"cannot write{where}: the workspace or its store is read-only; make it "
                f"writable for this user (or point DOORSTEP_DATABASE_URL elsewhere) and re-run.")
    return None


def _store_failure(exc: SQLAlchemyError) -> str:
    detail = _first_line(exc)
    lowered = detail.lower()
    if "readonly database" in lowered or "read-only" in lowered:
        return ("the store is read-only (" + detail + "): make the workspace and its doorstep.db "
                "writable for this user, then re-run.")
    if "disk is full" in lowered or "no space left" in lowered or "database or disk is full" \
            in lowered:
        return f"the disk is full ({detail}): free some space, then re-run; {_SAFE_TO_RERUN}."
    if "unable to open database file" in lowered:
        return ("the store's file cannot be opened or created (" + detail + "): check that the "
                "workspace folder exists and is writable, then re-run.")
    if "does not exist" in lowered and "database" in lowered:
        return (f"the store's database does not exist ({detail}): create it, or fix "
                "DOORSTEP_DATABASE_URL or [store] url in doorstep.toml, then re-run.")
    if "password authentication failed" in lowered or "role" in lowered and "does not exist" \
            in lowered:
        return (f"the store refused the credentials ({detail}): fix the user or password in "
                "DOORSTEP_DATABASE_URL or [store] url, then re-run.")
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if lost or any(s in lowered for s in ("server closed the connection", "terminating connection",
                                          "connection is closed", "consuming input failed",
                                          "connection already closed")):
        return (f"the connection to the store was lost mid-run ({detail}); nothing of the "
                f"interrupted step was kept: once the database is back, re-run the command; "
                f"{_SAFE_TO_RERUN}.")
    if isinstance(exc, OperationalError) and any(
        s in lowered for s in ("connection refused", "could not connect", "connection failed",
                               "is the server running", "timeout expired", "could not translate")
    ):
        return (f"cannot reach the store's database ({detail}): check that the server is up and "
                "that DOORSTEP_DATABASE_URL or [store] url points at it, then re-run.")
    if "database is locked" in lowered:
        return ("the store stayed locked by another doorstep process for too long: let it "
                "finish, then re-run.")
    return (f"the store failed ({detail}); re-run with {DEBUG_ENV}=1 to see the traceback, and "
            "report it if it persists.")


def describe_failure(exc: BaseException) -> str:
    """One sentence saying what went wrong and what to do about it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError):
            told = _os_failure(cause)
            if told:
                return told
        if isinstance(cause, SQLAlchemyError):
            return _store_failure(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    if "no space left" in text or "disk is full" in text:
        return f"the disk is full ({_first_line(exc)}): free some space, then re-run."
    return (f"unexpected {type(exc).__name__}: {_first_line(exc)}. Re-run with {DEBUG_ENV}=1 "
            "to see the traceback, and report it.")
