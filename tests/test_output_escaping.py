"""Text from partner files reaches five channels, and in each it stays text: Slack mrkdwn, email
headers, the terminal, CSV cells and HTML."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from rich.table import Table
from sqlalchemy import update
from test_act_channels import MailStore, WebhookReceiver, smtp_server  # noqa: F401 (a fixture)
from test_web_auth import make_app, quick_hashes, sign_in, world  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from doorstep.act.channels import EmailChannel, OutgoingMessage, SlackChannel
from doorstep.act.outbox import Templates
from doorstep.cli import app as cli
from doorstep.share.policy import OverlapMatrix, write_matrix_csv
from doorstep.store.export import csv_cell
from doorstep.store.models import Partner
from doorstep.terminal import SafeConsole
from doorstep.workspace import Workspace

HOSTILE = (
    "Acme <!channel> <http://evil.example|Reset your password> & Co\r\n"
    "Bcc: victim@example.com\n[bold red]LOUD[/] \x1b[31mred\x1b]8;;http://evil.example\x07"
)
CONTEXT = {
    "partner_account": {"name": HOSTILE},
    "account": {"name": "ours", "account_id": "a1"},
    "owner": {"name": "Ada", "email": "ada@example.com"},
    "lead": {"lead_id": "L-a1"},
}


def rendered_message() -> OutgoingMessage:
    rendered = Templates().render("partner_intro", CONTEXT)
    return OutgoingMessage(1, "L-a1", "partner_intro", "kim@cloudway.example", "k" * 64,
                           rendered.subject, rendered.text)


def test_slack_shows_a_hostile_name_as_text_not_a_ping_or_a_link() -> None:
    with WebhookReceiver(secret=None) as slack:
        SlackChannel(slack.url, timeout=5).send(rendered_message())
    text = json.loads(slack.requests[0].body)["text"]
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "&lt;http://evil.example|Reset your password&gt;" in text
    assert "<http" not in text and "&amp; Co" in text


def test_a_line_break_in_a_name_stays_in_the_email_subject(
    smtp_server: tuple[int, MailStore],  # noqa: F811
) -> None:
    message = rendered_message()
    assert "\n" not in message.subject and "Bcc: victim@example.com" in message.subject
    assert not message.text.startswith("Bcc")
    port, mail = smtp_server
    channel = EmailChannel("127.0.0.1", port, "doorstep@example.com", timeout=5)
    channel.send(message)
    channel.send(OutgoingMessage(2, "L-a1", "x", "kim@cloudway.example", "j" * 64,
                                 "Forged\r\nBcc: victim@example.com", "text\n"))
    channel.close()
    for _, recipients, received in mail.envelopes:
        assert recipients == ["kim@cloudway.example"]
        assert received["Bcc"] is None
        assert "\n" not in str(received["Subject"])
        assert "Bcc: victim@example.com" in str(received["Subject"])


def test_the_terminal_prints_markup_and_escape_sequences_as_text() -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, width=200)
    table = Table()
    table.add_column("partner account")
    table.add_row(HOSTILE)
    console.print(table)
    console.print(f"warning: {HOSTILE}")
    shown = out.getvalue()
    assert shown.count("[bold red]LOUD[/]") == 2
    assert "\x1b[31mred" not in shown and "\x1b]8;;" not in shown and "\x07" not in shown


def test_cli_errors_show_hostile_text_literally(world: Workspace) -> None:  # noqa: F811
    hostile = "[red]x[/]\x1b[2J@example.com"
    result = CliRunner().invoke(cli, ["user", "unlock", str(world.path), "--email", hostile])
    assert result.exit_code == 1
    assert "[red]x[/]" in result.output and "\x1b" not in result.output


@pytest.mark.parametrize("value", [
    "=HYPERLINK(\"http://evil.example\")", " =1+1", "  +1", "\t=1", "\r=1", "\n-1", "@SUM(A1)",
    " @x", "-2+3", "|cmd", "\uff1dcmd", " \uff0bx", "\tplain", "\rplain",
])
def test_csv_never_writes_a_cell_a_spreadsheet_would_run(value: str) -> None:
    cell = csv_cell(value)
    assert cell == "'" + value


@pytest.mark.parametrize("value", ["Acme", "a=b", "x-1", "", "100"])
def test_csv_leaves_ordinary_text_alone(value: str) -> None:
    assert csv_cell(value) == value


def test_the_overlap_matrix_csv_neutralises_hostile_ids() -> None:
    matrix = OverlapMatrix(["=ours"], [" =theirs"], {"=p1": {("=ours", " =theirs"): 3}})
    out = io.StringIO()
    write_matrix_csv(matrix, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    cells = [c for row in rows for c in row if c not in ("3",)]
    assert all(not c.lstrip().startswith("=") for c in cells), rows


def test_html_pages_escape_a_hostile_partner_name(world: Workspace) -> None:  # noqa: F811
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with world.store.engine.begin() as conn:
        conn.execute(update(Partner).where(Partner.partner_id == "p1").values(name=name))
    with TestClient(make_app(world)) as client:
        sign_in(client, "admin@example.com")
        pages = [client.get(p).text for p in ("/leads/L-a1", "/dashboard")]
    assert any("&lt;script&gt;alert(" in page for page in pages)
    assert all("<script>alert(" not in page and "<img src=x" not in page for page in pages)
