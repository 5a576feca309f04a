"""The `doorstep` command line: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from typer.core import TyperOption

from doorstep import pipeline
from doorstep.act import (
    REJECT_REASONS,
    ActReport,
    LeadActionError,
    LeadChange,
    accept_lead,
    acting_rep,
    failure_advice,
    mark_intro_made,
    reject_lead,
)
from doorstep.config import ConfigError
from doorstep.demo import DEMO_PASSWORD, create_demo_users, create_demo_workspace
from doorstep.errors import debugging, describe_failure
from doorstep.ingest import ImportFailure, ImportReport, init_workspace
from doorstep.ingest.contract import TABLES
from doorstep.map import MapReport
from doorstep.pipeline import run_stage
from doorstep.qualify import QualifyReport, funnel
from doorstep.share import ShareError
from doorstep.store.export import EXPORTS, write_csv
from doorstep.terminal import console, err, labelled, plural, styled
from doorstep.web.commands import register as register_web_commands
from doorstep.workspace import Workspace, open_workspace, require_imported

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
WIDE_COLUMNS = 200
_typer_type_label = TyperOption.display_type_rich


def _type_label(self: TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: show no type beside it (Typer writes `--full <bool>`)."""
    return None if self.is_flag else _typer_type_label(self, ctx)


TyperOption.display_type_rich = _type_label  # type: ignore[method-assign]
app = typer.Typer(
    help="doorstep: ecosystem-qualified leads from your partners' overlapping accounts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
)


def _show_version(show: bool) -> None:
    if show:
        console.print(f"doorstep {package_version('doorstep')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_show_version, is_eager=True,
        help="Print doorstep's version and exit.")] = False,
    wide: Annotated[bool, typer.Option(
        "--wide", help=f"Print tables up to {WIDE_COLUMNS} columns wide instead of folding "
        "them to the terminal's width.")] = False,
) -> None:
    """doorstep: ecosystem-qualified leads from your partners' overlapping accounts."""
    if wide:
        for c in (console, err):
            c.width = max(c.width, WIDE_COLUMNS)

WorkspacePath = Annotated[Path, typer.Argument(help="The workspace folder.")]

EXPORT_TABLES = (*EXPORTS, "matrix")
USER_ERRORS = (ConfigError, ImportFailure, LeadActionError, ShareError)


def _fail(message: str) -> None:
    err.print(labelled("error:", "bold red", message), soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error into one clear sentence on stderr and exit code 1."""
    try:
        yield
    except USER_ERRORS as exc:
        _fail(str(exc))


def _open(path: Path, *, imported: bool = False) -> Workspace:
    """The workspace at `path`; with `imported`, one whose store holds an import."""
    with user_errors():
        workspace = open_workspace(path)
        if imported:
            require_imported(workspace)
        return workspace
    raise AssertionError("unreachable")


class _ImportBars:
    """Rich progress bars for an import: one per table, by bytes read, then rows written."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def __call__(self, phase: str, table: str, done: int, total: int) -> None:
        key = (phase, table)
        if key not in self.tasks:
            label = f"reading {table}" if phase == "read" else f"writing {table}"
            self.tasks[key] = self.progress.add_task(label, total=max(total, 1))
        self.progress.update(self.tasks[key], completed=done if total else 1, total=max(total, 1))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.0f}%"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def run_import(workspace: Workspace, *, profile: str | None = None) -> ImportReport:
    """Import the workspace with progress bars and print what happened."""
    return cast(ImportReport, run_stage(workspace, "import", hooks=SHOWN, profile=profile))


def print_import(workspace: Workspace, report: ImportReport) -> None:
    """What an import read, loaded and quarantined."""
    table = Table(title="Import", title_justify="left")
    for column in ("table", "file", "read", "new", "updated", "unchanged", "quarantined"):
        table.add_column(column, justify="left" if column in ("table", "file") else "right")
    for name, c in report.tables.items():
        table.add_row(
            name,
            c.file,
            f"{c.read:,}",
            f"{c.inserted:,}",
            f"{c.updated:,}",
            f"{c.unchanged:,}",
            styled(f"{c.quarantined:,}", "red") if c.quarantined else "0",
        )
    console.print(table)
    for name, c in report.tables.items():
        if c.layout:
            console.print(f"Read {c.file} as a {c.layout} ({name}).")
    print_problems(workspace, report)
    if report.absent:
        console.print(f"No file for {', '.join(report.absent)}: "
                      f"{plural(len(report.absent), 'an empty table', 'empty tables')}.")
    gone = {n: c.not_in_file for n, c in report.tables.items() if c.not_in_file}
    if gone:
        listed = ", ".join(f"{n} {k:,}" for n, k in gone.items())
        console.print(f"Kept in the store though no longer in the files: {listed}.")


SHOWN_PROBLEMS = 6


def print_problems(workspace: Workspace, report: ImportReport) -> None:
    """The quarantine in short: the most frequent problems, by table and column, each with the
    first row it was found on and its fix; then where the whole list is."""
    if not report.problems:
        return
    said = []
    if report.quarantined:
        said.append(f"{report.quarantined:,} {plural(report.quarantined, 'row')} quarantined")
    if report.cells_left_out:
        said.append(f"{report.cells_left_out:,} {plural(report.cells_left_out, 'value')} left "
                    "out of rows that loaded")
    console.print(f"{' and '.join(said)}:")
    for group in report.problems[:SHOWN_PROBLEMS]:
        n = group.count
        what = (f"{n:,} {plural(n, 'value')} left out ({plural(n, 'its row', 'their rows')} "
                "loaded)" if group.loaded else f"{n:,} {plural(n, 'row')} quarantined")
        value = group.value if len(group.value) <= 30 else group.value[:29] + "…"
        console.print(labelled(f"  {group.table}.{group.column}:", "bold", what))
        console.print(f"    {group.reason}")
        console.print(f"    first: {group.file} row {group.row}"
                      + (f', "{value}"' if value else ""))
    rest = len(report.problems) - SHOWN_PROBLEMS
    more = f" ({rest:,} more {plural(rest, 'kind')} of problem)" if rest > 0 else ""
    console.print(f"Every one, with file, row, column and value{more}: "
                  f"doorstep export {workspace.path} quarantine")


@app.command()
def init(path: WorkspacePath) -> None:
    """Create a workspace: a commented doorstep.toml and empty tables with headers."""
    written = init_workspace(path)
    for file in written:
        console.print(f"wrote {file}")
    if not written:
        console.print(f"{path} already has every file; nothing changed.")
    console.print(f"Next: fill {path / 'data'} and run `doorstep import {path}`.")


class ExportProfile(StrEnum):
    hubspot = "hubspot"
    salesforce = "salesforce"
    crossbeam = "crossbeam"
    reveal = "reveal"


@app.command("import")
def import_(
    path: WorkspacePath,
    profile: Annotated[
        ExportProfile | None,
        typer.Option("--profile", help="read files under data/ as this tool's exports "
                     "(default: any known layout, recognised by its headers)"),
    ] = None,
) -> None:
    """Validate the workspace tables and load them into the store (atomic, re-runnable)."""
    run_import(_open(path), profile=profile.value if profile else None)


@app.command()
def export(
    path: WorkspacePath,
    table: Annotated[str, typer.Argument(help=f"One of: {', '.join(EXPORT_TABLES)}.")],
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write one of doorstep's tables (or the overlap matrix) as CSV."""
    if table not in EXPORT_TABLES:
        err.print(f"error: unknown table '{table}'; choose one of: {', '.join(EXPORT_TABLES)}.")
        raise typer.Exit(2)
    workspace = _open(path)

    def write(target: Any) -> int:
        if table == "matrix":
            from doorstep.share.policy import overlap_matrix, write_matrix_csv

            return write_matrix_csv(overlap_matrix(workspace), target)
        return write_csv(workspace.store, table, target)

    if out is None:
        write(sys.stdout)
        return
    with out.open("w", newline="", encoding="utf-8") as f:
        count = write(f)
    err.print(f"wrote {count:,} rows to {out}")


@app.command("map")
def map_(
    path: WorkspacePath,
    full: Annotated[
        bool,
        typer.Option("--full", help="fit the matching model again and score every record, "
                     "instead of scoring only partner records new since the last fit"),
    ] = False,
) -> None:
    """Account mapping: match our accounts against every partner's accounts -> overlaps."""
    run_map(_open(path, imported=True), full=full)


def run_map(workspace: Workspace, *, full: bool = False) -> MapReport:
    """Map the workspace with a status line and print the overlaps found and the matrix."""
    return cast(MapReport, run_stage(workspace, "map", hooks=SHOWN, full=full))


def print_map(workspace: Workspace, report: MapReport) -> None:
    """The overlaps found, by method, and the overlap matrix."""
    for warning in report.warnings:
        err.print(labelled("warning:", "yellow", warning))
    summary = Table(title="Account mapping", title_justify="left")
    summary.add_column("method")
    summary.add_column("overlaps", justify="right")
    summary.add_column("share", justify="right")
    for method, n in sorted(report.by_method.items(), key=lambda kv: -kv[1]):
        summary.add_row(method, f"{n:,}", f"{n / max(report.overlaps, 1):.0%}")
    summary.add_row(styled("all", "bold"), styled(f"{report.overlaps:,}", "bold"), "100%")
    console.print(summary)
    console.print(
        f"{report.inserted:,} new, {report.updated:,} changed, {report.removed:,} removed, "
        f"{report.unchanged:,} unchanged."
    )
    if report.mode == "incremental":
        console.print(
            f"Incremental map: {report.rescored:,} new or changed partner records scored with "
            f"the saved model, {report.gone:,} dropped; `doorstep map {workspace.path} --full` "
            "fits the model again."
        )
    else:
        console.print(f"Full map: the model was fitted again ({report.mode_reason}).")
    if report.related:
        console.print(
            f"{report.related:,} related accounts (the same brand in another country, with its "
            f"own website) kept apart, never overlaps: doorstep export {workspace.path} related"
        )
    from doorstep.share.policy import overlap_matrix

    matrix = overlap_matrix(workspace)
    if matrix:
        table = Table(title="Overlap matrix: our populations x the partner's",
                      title_justify="left")
        table.add_column("partner")
        table.add_column("ours")
        for theirs in matrix.theirs:
            table.add_column(f"their {theirs}".replace("_", " "), justify="right")
        for partner_id in sorted(matrix.cells):
            for i, population in enumerate(matrix.ours):
                cells = [matrix.cells[partner_id].get((population, t), 0) for t in matrix.theirs]
                table.add_row(
                    partner_id if i == 0 else "",
                    population.replace("_", " "),
                    *(f"{c:,}" for c in cells),
                    end_section=i == len(matrix.ours) - 1,
                )
        console.print(table)


@app.command()
def qualify(path: WorkspacePath) -> None:
    """The four gates: turn overlaps into leads (EQLs and candidates with their reasons)."""
    run_qualify(_open(path, imported=True))


def run_qualify(workspace: Workspace) -> QualifyReport:
    """Qualify the workspace's overlaps and print what changed and the funnel by gate."""
    return cast(QualifyReport, run_stage(workspace, "qualify", hooks=SHOWN))


def print_qualify(workspace: Workspace, result: QualifyReport) -> None:
    """What qualifying changed, and the funnel by gate."""
    for note in result.notes:
        err.print(labelled("note:", "yellow", note))
    real = result.changed - result.clock_only
    if result.created == 0 and real == 0 and result.events == 0:
        moved = (f": only warmth recency moved with the clock, in the warmth scores of "
                 f"{result.clock_only:,} {plural(result.clock_only, 'lead')}; no status, gate "
                 "or owner changed" if result.clock_only else "")
        console.print(f"Nothing changed{moved} ({result.leads:,} "
                      f"{plural(result.leads, 'lead')}).")
    else:
        recency = (f" (and {result.clock_only:,} whose warmth recency alone moved with the "
                   "clock)" if result.clock_only else "")
        console.print(
            f"{result.leads:,} {plural(result.leads, 'lead')}: {result.created:,} new, "
            f"{real:,} changed{recency}, {result.unchanged:,} unchanged; "
            f"{result.events:,} {plural(result.events, 'event')}."
        )
    console.print(
        f"{result.warmth_requests:,} warmth {plural(result.warmth_requests, 'check')} queued "
        f"for partners; {result.excluded_customers:,} existing "
        f"{plural(result.excluded_customers, 'customer')} left out."
    )
    table = Table(title="Funnel by gate", title_justify="left")
    for column in ("step", "leads", "lost at this gate", "share lost"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in funnel(workspace):
        table.add_row(step.step, f"{step.count:,}", f"{step.lost:,}", f"{step.share_lost:.0%}")
    console.print(table)


@app.command("act")
def act_(
    path: WorkspacePath,
    send: Annotated[bool, typer.Option(help="Deliver queued messages now.")] = True,
) -> None:
    """Route EQLs to an owner with an action and a deadline; queue and deliver the messages."""
    run_act(_open(path, imported=True), send=send)


def run_act(workspace: Workspace, *, send: bool = True) -> ActReport:
    """Route, queue and (optionally) deliver, then print who got what and what is overdue."""
    return cast(ActReport, run_stage(workspace, "act", send=send, hooks=SHOWN))


def print_act(workspace: Workspace, result: ActReport) -> None:
    """Who got which EQL, what was queued and sent, what is overdue."""
    send = result.delivery is not None
    routed = Table(title=f"Routed {len(result.routed):,} EQLs", title_justify="left")
    for column in ("lead", "account", "owner", "action", "due", "rule"):
        routed.add_column(column)
    for lead in result.routed[:20]:
        routed.add_row(lead.lead_id, lead.account_id, lead.owner_id, lead.action,
                       f"{lead.due_at:%Y-%m-%d}" if lead.due_at else "", lead.rule or "")
    if result.routed:
        console.print(routed)
        if len(result.routed) > 20:
            console.print(f"... and {len(result.routed) - 20:,} more "
                          f"(doorstep export {workspace.path} leads)")
    if result.no_motion:
        console.print(f"{len(result.no_motion):,} EQLs were not routed "
                      f"(first: {result.no_motion[0].lead_id}, {result.no_motion[0].reason}).")
    queued = ", ".join(
        f"{n:,} {action.replace('_', ' ')} {plural(n, 'message')}"
        for action, n in result.queued.items()
    ) or "nothing new"
    console.print(f"Queued: {queued}.")
    if result.delivery is not None:
        d = result.delivery
        if d.outbox is not None:
            console.print(f"Written to {d.outbox}: {d.sent:,} {plural(d.sent, 'message')} "
                          f"(.eml for email, .json for webhooks and Slack); "
                          f"{d.failed:,} failed, {d.pending:,} pending.")
        else:
            by_channel = ", ".join(f"{name} {c.sent:,}" for name, c in sorted(d.by_channel.items())
                                   if c.sent)
            per = f" ({by_channel})" if len(d.by_channel) > 1 and by_channel else ""
            console.print(f"Delivered: {d.sent:,} sent{per}, {d.failed:,} failed (will retry), "
                          f"{d.dead:,} dead; {d.pending:,} pending.")
        for line in failure_advice(d):
            err.print(labelled("failed:", "red", line))
        if d.sending:
            console.print(
                f"{d.sending:,} {plural(d.sending, 'delivery', 'deliveries')} wait on the lease "
                f"of a run that stopped while sending them; they are sent again after "
                f"{d.lease_ends:%H:%M} UTC (or run `doorstep act` again then)."
            )
    elif not send:
        console.print(f"Not sent yet: deliver with `doorstep act {workspace.path}`.")
    if result.overdue:
        console.print(Text.assemble(
            (f"{len(result.overdue):,} motions are overdue", "red"),
            f"; {result.escalations:,} escalated now.",
        ))
    for problem in result.problems:
        err.print(labelled("warning:", "yellow", problem))


@app.command()
def track(path: WorkspacePath) -> None:
    """Move routed leads on from the CRM's opportunities (opportunity, won, lost) or expire them."""
    run_track(_open(path, imported=True))


def run_track(workspace: Workspace) -> None:
    """Track every routed lead and print what moved."""
    run_stage(workspace, "track", hooks=SHOWN)


def print_track(workspace: Workspace, result: Any) -> None:
    """How many routed leads moved, and where to."""
    moved = ", ".join(f"{n:,} to {status}" for status, n in sorted(result.moved.items()))
    console.print(f"Tracked {result.tracked:,} routed leads: {moved or 'none moved'}.")


lead_app = typer.Typer(help="A rep's actions on a lead: accept, reject, intro made.",
                       no_args_is_help=True, context_settings=HELP_OPTIONS)
app.add_typer(lead_app, name="lead")
AsOption = Annotated[str, typer.Option(
    "--as", help="The email of the rep the lead is routed to (a rep user's or a rep's).")]


@lead_app.command("accept")
def lead_accept(path: WorkspacePath, lead_id: str, as_: AsOption) -> None:
    """Accept a lead routed to you."""
    _print_change(lambda ws, rep: accept_lead(ws, lead_id, actor=rep, as_rep=rep), path, as_)


@lead_app.command("reject")
def lead_reject(
    path: WorkspacePath, lead_id: str,
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(REJECT_REASONS)}.")],
    as_: AsOption,
    note: Annotated[str | None, typer.Option(help="Free text kept with the reason.")] = None,
) -> None:
    """Reject a lead with a reason (it feeds the measurement)."""
    _print_change(lambda ws, rep: reject_lead(ws, lead_id, reason, note=note, actor=rep,
                                              as_rep=rep), path, as_)


@lead_app.command("intro")
def lead_intro(path: WorkspacePath, lead_id: str, as_: AsOption) -> None:
    """Mark that the partner made the introduction."""
    _print_change(lambda ws, rep: mark_intro_made(ws, lead_id, actor=rep, as_rep=rep),
                  path, as_)


def _print_change(change: Callable[[Workspace, str], LeadChange], path: Path, email: str) -> None:
    """Act on a lead as the rep `email` names, under the web app's rules."""
    workspace = _open(path)
    with user_errors():
        done = change(workspace, acting_rep(workspace, email))
    console.print(f"{done.lead_id}: {done.from_status} -> {done.to_status} by {done.actor}")


@app.command()
def run(
    path: WorkspacePath,
    send: Annotated[bool, typer.Option(help="Deliver queued messages now.")] = True,
) -> None:
    """Import, map, qualify, act, track and report, in order."""
    run_pipeline(_open(path), send=send)


@app.command()
def report(
    path: WorkspacePath,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Conversion per lead type with intervals, and the verdict of EQLs vs MQLs."""
    run_report(_open(path, imported=True), as_json=as_json, html=html)


def run_report(workspace: Workspace, *, as_json: bool = False, html: Path | None = None) -> None:
    """Measure and print the report (text or JSON), optionally writing the HTML file."""
    from doorstep.measure import build_report, render_text, report_json, write_html

    result = build_report(workspace)
    if as_json:
        sys.stdout.write(json.dumps(report_json(result), indent=2, default=str) + "\n")
    elif html is None:
        for part in render_text(result):
            console.print(part)
    if html is not None:  # writing a file: say where, not the whole report again
        console.print(f"wrote {write_html(result, html)}")


@app.command()
def demo(
    path: WorkspacePath,
    accounts: Annotated[int, typer.Option(min=100, help="How many of our accounts.")] = 5000,
    partners: Annotated[int, typer.Option(min=1, max=50, help="How many partners.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 7,
) -> None:
    """Generate a realistic synthetic workspace, then run every stage on it."""
    with user_errors(), _progress() as progress:
        task = progress.add_task("generating the demo world", total=len(TABLES) + 1)
        world = create_demo_workspace(
            path, accounts=accounts, partners=partners, seed=seed, today=date.today(),
            progress=lambda _table, _rows: progress.advance(task),
        )
    table = Table(title=f"Demo world in {path} (seed {seed})", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in world.counts.items():
        table.add_row(f"data/{name}.csv", f"{n:,}")
    console.print(table)
    console.print(
        f"Truth: {world.true_overlaps:,} true overlaps on {world.overlapping_accounts:,} of our "
        f"accounts; {world.bad_rows} deliberately bad rows (see {path / 'truth'})."
    )
    workspace = _open(path)
    # The demo sends nothing anywhere: with [act] deliver = "file" its messages are written into
    # PATH/outbox/; a config that sends for real leaves them queued instead.
    run_pipeline(workspace, send=workspace.config.act.deliver == "file")
    users = Table(title=f"Web app: doorstep serve {path}, then log in at "
                  "http://127.0.0.1:8000 with password " + DEMO_PASSWORD, title_justify="left")
    for column in ("email", "role", "sees"):
        users.add_column(column)
    for email, role, scope in create_demo_users(workspace):
        users.add_row(email, role, scope)
    console.print(users)
    console.print(
        f"\nNext: look at the quarantine (doorstep export {path} quarantine) and the overlaps "
        f"(doorstep export {path} overlaps)."
    )


def print_report(workspace: Workspace, result: Any) -> None:
    """The measurement report as text."""
    from doorstep.measure import render_text

    for part in render_text(result):
        console.print(part)


class _Shown:
    """The terminal's view of the stages: progress while each runs, its summary when done."""

    STATUS = {"qualify": "qualifying leads", "act": "routing EQLs and delivering messages",
              "track": "tracking routed leads", "report": "measuring conversion"}
    PRINTERS: dict[str, Callable[[Workspace, Any], None]] = {
        "import": print_import, "map": print_map, "qualify": print_qualify, "act": print_act,
        "track": print_track, "report": print_report,
    }

    @contextmanager
    def stage(self, name: str) -> Iterator[Any]:
        with user_errors():
            if name == "import":
                with _progress() as progress:
                    yield _ImportBars(progress)
            elif name == "map":
                with err.status("mapping accounts") as status:
                    yield lambda step: status.update(step)
            else:
                with err.status(self.STATUS.get(name, name)):
                    yield None

    def finished(self, name: str, workspace: Workspace, result: Any) -> None:
        if name == "report":
            console.print(Rule("Report"))
        self.PRINTERS[name](workspace, result)


SHOWN = _Shown()


def run_pipeline(workspace: Workspace, *, send: bool = True) -> None:
    """Every stage in order (`doorstep.pipeline.run`), each printing its own summary."""
    pipeline.run(workspace, send=send, hooks=SHOWN)


partner_app = typer.Typer(help="Link this install with a partner's own doorstep install.",
                          context_settings=HELP_OPTIONS,
                          no_args_is_help=True)
app.add_typer(partner_app, name="partner")
share_app = typer.Typer(
    context_settings=HELP_OPTIONS,
    help="Exchange accounts with a linked partner install, sharing only what [sharing] allows.",
    no_args_is_help=True,
)
app.add_typer(share_app, name="share")
PartnerOption = Annotated[str, typer.Option("--partner", help="The partner id in this workspace.")]


@partner_app.command("key")
def partner_key(path: WorkspacePath) -> None:
    """Print this install's public key on one line, to send to a partner."""
    from doorstep.share import own_public_key

    with user_errors():
        sys.stdout.write(own_public_key(_open(path)) + "\n")


@partner_app.command("link")
def partner_link(
    path: WorkspacePath,
    partner: PartnerOption,
    key: Annotated[str, typer.Option("--key", help="The line the partner's `partner key` prints.")],
    url: Annotated[str | None, typer.Option("--url", help="The partner's doorstep serve address.")]
    = None,
) -> None:
    """Record a partner install's public key and, optionally, its server address."""
    from doorstep.share import link_partner

    with user_errors():
        link = link_partner(_open(path), partner, key, url)
    console.print(f"Linked partner {link.partner_id}" + (f" at {link.url}." if link.url else "."))


def _print_bundle(verb: str, report: Any) -> None:
    shared = ", ".join(f"{name} {level}" for name, level in sorted(report.levels.items())
                       if level != "hidden") or "nothing (every population hidden)"
    counts = ", ".join(f"{name} {n:,}" for name, n in sorted(report.counts.items())) or "none"
    console.print(f"{verb} {report.records:,} records for partner {report.partner_id}; "
                  f"in force: {shared}; overlap counts: {counts}.")


@share_app.command("export")
def share_export(
    path: WorkspacePath,
    partner: PartnerOption,
    out: Annotated[Path, typer.Option("--out", help="The bundle file to write.")],
) -> None:
    """Write a signed bundle for a linked partner holding only what the policy in force allows."""
    from doorstep.share import export_bundle

    with user_errors():
        report = export_bundle(_open(path), partner, out)
    _print_bundle(f"Wrote {out}:", report)


@share_app.command("import")
def share_import(
    path: WorkspacePath,
    file: Annotated[Path, typer.Argument(help="The bundle file the partner sent.")],
) -> None:
    """Verify a partner's bundle, then load it as that partner's accounts."""
    from doorstep.share import import_bundle

    with user_errors():
        report = import_bundle(_open(path), file)
    if not report.changed:
        console.print(f"Bundle {report.bundle_id} of partner {report.partner_id} is already "
                      "loaded; nothing changed.")
        return
    _print_bundle("Loaded", report)
    console.print(f"Next: doorstep map {path}")


@share_app.command("sync")
def share_sync(
    path: WorkspacePath,
    partner: PartnerOption,
    private: Annotated[bool, typer.Option(
        "--private", help="Private set intersection: no list crosses over, only the overlap."
    )] = False,
) -> None:
    """Exchange with a linked partner's running doorstep: bundles, or a private overlap."""
    from doorstep.share.private import sync_bundles, sync_private

    workspace = _open(path)
    with user_errors(), err.status(f"exchanging with partner {partner}"):
        if not private:
            sent, received = sync_bundles(workspace, partner)
        else:
            result = sync_private(workspace, partner)
    if not private:
        _print_bundle("Sent", sent)
        _print_bundle("Received", received)
        return
    table = Table(title=f"Private overlap with {partner}", title_justify="left")
    for column in ("our population", "their population", "overlap"):
        table.add_column(column, justify="right" if column == "overlap" else "left")
    for (ours, theirs), n in sorted(result.sizes.items()):
        table.add_row(ours, f"{theirs} ({result.levels.get(theirs, '?')})", f"{n:,}")
    console.print(table)
    console.print(f"Loaded {result.records:,} shared records of partner {partner} "
                  f"(our set: {result.our_set_size:,} keys). Next: doorstep map {path}")


register_web_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `doorstep` console script.

    A failure of the store, the disk or the network prints one sentence with what to do and
    exits with 1; `DOORSTEP_DEBUG=1` prints the traceback too.
    """
    try:
        app(args=argv)
    except Exception as exc:
        if debugging():
            raise
        err.print(labelled("error:", "bold red", describe_failure(exc)), soft_wrap=True)
        sys.exit(1)
