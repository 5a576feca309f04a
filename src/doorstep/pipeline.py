"""The whole pipeline as one library call: import, map, qualify, act, track, report.

    from doorstep.pipeline import run
    from doorstep.workspace import open_workspace
    result = run(open_workspace("acme"))

The CLI's `doorstep run` and `doorstep demo` call `run`; each single-stage command calls
`run_stage`. Every stage is called the same way: the workspace, the clock and a progress hook.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from doorstep.workspace import Workspace

STAGES = ("import", "map", "qualify", "act", "track", "report")


class PipelineHooks(Protocol):
    """How a caller watches the stages: a progress hook around each, then its result."""

    def stage(self, name: str) -> AbstractContextManager[Any]:
        """Entered around one stage; yields the stage's progress callback, or None."""
        ...

    def finished(self, name: str, workspace: Workspace, result: Any) -> None:
        """Called with each stage's result as soon as the stage is done."""
        ...


class _Quiet:
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield None

    def finished(self, name: str, workspace: Workspace, result: Any) -> None:
        return None


@dataclass
class PipelineResult:
    """Each stage's own report, by stage name, in the order they ran."""

    results: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.results[name]


def _call(
    name: str, workspace: Workspace, *, now: datetime | None, send: bool, progress: Any,
    full: bool = False, profile: str | None = None,
) -> Any:
    # Imported here: each stage pulls in its own heavy dependencies, and a single-stage command
    # should pay only for its own.
    if name == "import":
        from doorstep.ingest import import_workspace

        settings = workspace.config.import_
        return import_workspace(workspace.path, workspace.store, progress=progress,
                                encoding=settings.encoding, date_format=settings.date_format,
                                decimal=settings.decimal,
                                profile=profile or settings.profile)
    if name == "map":
        from doorstep.map.stage import map_accounts

        return map_accounts(workspace, progress=progress, full=full)
    if name == "qualify":
        from doorstep.qualify import qualify_leads

        return qualify_leads(workspace, now=now)
    if name == "act":
        from doorstep.act import act

        return act(workspace, now=now, send=send)
    if name == "track":
        from doorstep.track import track_outcomes

        return track_outcomes(workspace, now=now)
    if name == "report":
        from doorstep.measure import build_report

        return build_report(workspace, now=now)
    raise ValueError(f"there is no stage {name!r}; the stages are {', '.join(STAGES)}.")


def run_stage(
    workspace: Workspace,
    name: str,
    *,
    now: datetime | None = None,
    send: bool = True,
    hooks: PipelineHooks | None = None,
    full: bool = False,
    profile: str | None = None,
) -> Any:
    """Run one stage on the workspace and return its report (`full`: a full map; `profile`:
    the export layouts an import recognises)."""
    watch = hooks or _Quiet()
    with watch.stage(name) as progress:
        result = _call(name, workspace, now=now, send=send, progress=progress, full=full,
                       profile=profile)
    watch.finished(name, workspace, result)
    return result


def run(
    workspace: Workspace,
    *,
    now: datetime | None = None,
    send: bool = True,
    hooks: PipelineHooks | None = None,
    stages: Sequence[str] = STAGES,
) -> PipelineResult:
    """Run the stages in order (by default all of them) and return each one's report.

    `send` False leaves the act stage's messages in the outbox; `now` fixes every stage's clock.
    """
    result = PipelineResult()
    for name in stages:
        result.results[name] = run_stage(workspace, name, now=now, send=send, hooks=hooks)
    return result

