"""CLI commands for the web app and the feedback loop: `user add`, `user token`, `user unlock`,
`serve`, `feedback`. `register(app)` adds them to the `doorstep` command line."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from doorstep.config import ConfigError
from doorstep.feedback import (
    Digest,
    UnknownPartner,
    build_digests,
    queue_digests,
    write_digests_csv,
)
from doorstep.feedback.digest import conversion_text
from doorstep.measure.format import pct
from doorstep.terminal import console, err, labelled, plural
from doorstep.web.auth import (
    ROLES,
    UserError,
    add_user,
    issue_token,
    list_users,
    live_tokens,
    normalise_email,
    remove_user,
    revoke_access,
    unlock_user,
)
from doorstep.workspace import Workspace, open_workspace

PASSWORD_ENV = "DOORSTEP_PASSWORD"


WorkspacePath = Annotated[Path, typer.Argument(help="The workspace folder.")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn a user error into one clear sentence on stderr and exit code 1."""
    try:
        yield
    except (ConfigError, UserError, UnknownPartner) as exc:
        err.print(labelled("error:", "bold red", str(exc)), soft_wrap=True)
        raise typer.Exit(1) from exc


def _open(path: Path) -> Workspace:
    with _user_errors():
        return open_workspace(path)
    raise AssertionError("unreachable")


def user_add(
    path: WorkspacePath,
    email: Annotated[str, typer.Option(help="The user's email; they sign in with it.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    partner: Annotated[
        str | None, typer.Option("--partner", help="For a partner user: its partner_id.")
    ] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="For a rep user: their rep_id.")] = None,
) -> None:
    """Add a web user (or update one): the password comes from DOORSTEP_PASSWORD or a prompt."""
    if role not in ROLES:
        err.print(f"error: --role must be one of: {', '.join(ROLES)}.")
        raise typer.Exit(2)
    workspace = _open(path)
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True
    )
    with _user_errors():
        user, created = add_user(workspace.store, email, role, password, partner_id=partner,
                                 rep_id=rep)
    scope = f" for partner {user.partner_id}" if user.partner_id else (
        f" for rep {user.rep_id}" if user.rep_id else ""
    )
    verb = "added" if created else "updated"
    console.print(f"{verb} {user.email}: {user.role.replace('_', ' ')}{scope}", highlight=False)


def user_token(
    path: WorkspacePath,
    email: Annotated[str, typer.Option(help="Whose token.")],
) -> None:
    """Print a new API token for the user (send it as Authorization: Bearer TOKEN)."""
    workspace = _open(path)
    with _user_errors():
        token = issue_token(workspace.store, email)
    sys.stdout.write(token + "\n")
    err.print("Keep it secret: only its hash is stored, so it cannot be shown again.")


def user_unlock(
    path: WorkspacePath,
    email: Annotated[str, typer.Option(help="Whose sign-in to unlock.")],
) -> None:
    """Let a user whose sign-in was locked by failed attempts sign in again at once."""
    workspace = _open(path)
    with _user_errors():
        unlock_user(workspace.store, email)
    console.print(f"unlocked {email.strip().lower()}: failed sign-ins cleared", highlight=False)


def user_list(path: WorkspacePath) -> None:
    """List the web app's users: role, scope, whether active, last sign-in, live API tokens."""
    workspace = _open(path)
    tokens = live_tokens(workspace.store)
    table = Table(title="Users", title_justify="left")
    # an email is never split across lines; the other columns give way first
    table.add_column("email", no_wrap=True)
    for column in ("role", "scope", "active", "last sign-in", "tokens"):
        table.add_column(column, justify="right" if column == "tokens" else "left",
                         overflow="fold")
    offset, found = 0, 0
    while batch := list_users(workspace.store, offset=offset, limit=500):
        for user in batch:
            scope = user.partner_id or user.rep_id or ""
            last = user.last_login_at.strftime("%Y-%m-%d") if user.last_login_at else ""
            table.add_row(Text(user.email), user.role.replace("_", " "), Text(scope),
                          "yes" if user.active else "no", last,
                          f"{tokens.get(user.user_id, 0):,}")
        offset += len(batch)
        found += len(batch)
    if not found:
        console.print(f"No users yet: `doorstep user add {path} --email ... --role admin`.")
        return
    console.print(table)


def user_revoke(
    path: WorkspacePath,
    email: Annotated[str, typer.Option(help="Whose sessions and tokens to end.")],
) -> None:
    """End every session and API token of a user at once (they may sign in again)."""
    workspace = _open(path)
    with _user_errors():
        revoked = revoke_access(workspace.store, email)
    plural = "token" if revoked == 1 else "tokens"
    console.print(Text(f"revoked {normalise_email(email)}: every session ended, "
                       f"{revoked} API {plural} revoked"))


def user_remove(
    path: WorkspacePath,
    email: Annotated[str, typer.Option(help="Whom to remove.")],
) -> None:
    """Remove a user: their sessions end and their API tokens are deleted."""
    workspace = _open(path)
    with _user_errors():
        remove_user(workspace.store, email)
    console.print(Text(f"removed {normalise_email(email)}"))


def serve(
    path: WorkspacePath,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=0, help="Server processes; 0 (the default) means one per core.")] = 0,
) -> None:
    """Serve the web app: dashboard, rep queue, partner portal and the API under /api/."""
    import uvicorn

    from doorstep.map.parallel import available_workers
    from doorstep.web.app import WORKSPACE_ENV, create_app
    from doorstep.web.server import reuse_port_available, serve_processes

    processes = workers or available_workers()
    with _user_errors():
        app = create_app(path, warm_up=processes == 1)  # checks the workspace and its store
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        err.print(labelled(
            "warning:", "yellow",
            "listening beyond this machine: serve it over https (session cookies are marked "
            "Secure only on https requests; a proxy on this machine is trusted for "
            "X-Forwarded-Proto).",
        ))
    err.print(f"doorstep on http://{host}:{port}/ with {processes} "
              f"{plural(processes, 'process', 'processes')} (Ctrl-C stops it)")
    if processes == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    app.state.doorstep.workspace.store.engine.dispose()
    if reuse_port_available():
        serve_processes(str(Path(path).resolve()), host, port, processes)
        return
    os.environ[WORKSPACE_ENV] = str(Path(path).resolve())
    uvicorn.run("doorstep.web.app:app_from_environment", factory=True, workers=processes,
                host=host, port=port, log_level="warning")


def _print_digest(digest: Digest) -> None:
    card = digest.scorecard
    table = Table(title=f"{card.partner_name} ({digest.partner_id}), {digest.period}",
                  title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_column("rate", justify="right")
    table.add_column("of", justify="left")
    for line in card.lines:
        table.add_row(line.label, f"{line.count:,}", pct(line.rate),
                      f"{line.base:,} {line.base_label.removeprefix('of ')}")
    console.print(table)
    console.print(f"EQL conversion: {conversion_text(card.conversion, card.mql_rate)}.",
                  highlight=False)


def feedback(
    path: WorkspacePath,
    partner: Annotated[
        str | None, typer.Option("--partner", help="Only this partner (default: every one).")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the partners' leads and outcomes here.")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Queue each digest email (once per period) and send.")
    ] = False,
) -> None:
    """Each partner's digest: the leads it surfaced, what became of them, its scorecard."""
    workspace = _open(path)
    with _user_errors():
        digests = build_digests(workspace, partner_ids=[partner] if partner else None)
    for digest in digests:
        _print_digest(digest)
    if csv is not None:
        with csv.open("w", newline="", encoding="utf-8") as f:
            rows = write_digests_csv(digests, f)
        err.print(f"wrote {rows:,} rows to {csv}")
    if not send:
        return
    with _user_errors():
        result = queue_digests(workspace, digests=digests, send=True)
    for problem in result.problems:
        err.print(labelled("warning:", "yellow", problem))
    console.print(
        f"digests for {result.period}: {len(result.queued)} queued, "
        f"{len(result.already_queued)} already queued before"
        + (f"; {result.delivery.sent} sent, {result.delivery.failed} failed"
           if result.delivery else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the `user` commands, `serve` and `feedback` to the doorstep command line."""
    users = typer.Typer(help="Web app users and their API tokens.", no_args_is_help=True,
                        context_settings={"help_option_names": ["-h", "--help"]})
    users.command("add")(user_add)
    users.command("token")(user_token)
    users.command("unlock")(user_unlock)
    users.command("list")(user_list)
    users.command("revoke")(user_revoke)
    users.command("remove")(user_remove)
    app.add_typer(users, name="user")
    app.command("serve")(serve)
    app.command("feedback")(feedback)
