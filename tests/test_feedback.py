"""The feedback stage: each partner's digest, scorecard, CSV and email, and warmth answers back."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import write_table
from sqlalchemy import func, insert, select
from test_act_channels import MailStore, smtp_server  # noqa: F401 (a fixture)

from doorstep.act import accept_lead, act, mark_intro_made, reject_lead
from doorstep.config import CONFIG_FILE
from doorstep.feedback import (
    InvalidAnswer,
    UnknownPartner,
    WarmthCheckNotFound,
    answer_warmth_check,
    partner_digest,
    queue_digests,
    scorecards,
    surfaced_leads_page,
    warmth_checks,
    write_digest_csv,
)
from doorstep.feedback.digest import period_of
from doorstep.feedback.send import DIGEST, digest_key
from doorstep.ingest import import_workspace
from doorstep.map import map_accounts
from doorstep.measure import build_report
from doorstep.qualify import qualify_leads
from doorstep.store.models import Delivery, Lead, Opportunity, WarmthAnswer
from doorstep.workspace import Workspace, open_workspace

# The world's clock: qualified and routed 40 days ago, so a 30-day window has closed on them.
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
T0 = NOW - timedelta(days=40)


def _account(account_id: str, name: str, country: str, owner: str, site: str) -> dict[str, object]:
    return {"account_id": account_id, "name": name, "website": site, "country": country,
            "industry": "software", "employees": 250, "owner_id": owner, "territory": "EMEA",
            "is_customer": "false"}


def _partner_account(
    partner_id: str, pa_id: str, name: str, relationship: str, site: str, owner: str
) -> dict[str, object]:
    return {"partner_id": partner_id, "partner_account_id": pa_id, "name": name,
            "relationship": relationship, "website": site,
            "partner_owner_email": owner,
            "last_activity_at": (T0 - timedelta(days=5)).isoformat(),
            "relationship_strength": 4, "contacts_engaged": 3}


WEB_WORLD: dict[str, list[dict[str, object]]] = {
    "reps": [
        {"rep_id": "r1", "name": "Ada Lovelace", "email": "ada@example.com", "territory": "EMEA",
         "capacity": 20, "active": "true"},
        {"rep_id": "r2", "name": "Bea Brown", "email": "bea@example.com", "territory": "EMEA",
         "capacity": 20, "active": "true"},
    ],
    "partners": [
        {"partner_id": "p1", "name": "Cloudway", "partner_manager_id": "r1",
         "contact_email": "alliances@cloudway.example"},
        {"partner_id": "p2", "name": "Datastack", "partner_manager_id": "r2",
         "contact_email": "partners@datastack.example"},
        {"partner_id": "p3", "name": "Quietly", "partner_manager_id": "", "contact_email": ""},
    ],
    "accounts": [
        _account("a1", "Northwind Analytics", "DE", "r1", "northwind.de"),
        _account("a2", "Bluepeak Logistics", "GB", "r2", "bluepeak.co.uk"),
        _account("a3", "Redrock Mining", "FR", "r1", "redrock.fr"),
        _account("a4", "Silverline Foods", "NL", "r2", "silverline.nl"),
        _account("a5", "Greenfield Energy", "DE", "r1", "greenfield.de"),
        _account("a6", "Bluewater Health", "ES", "r2", "bluewater.es"),
        _account("a7", "Ironclad Security", "DE", "r1", "ironclad.de"),
        _account("a8", "Oakridge Media", "GB", "r2", "oakridge.co.uk"),
        _account("a9", "Pinecrest Labs", "DE", "r1", "pinecrest.de"),
    ],
    "partner_accounts": [
        _partner_account("p1", "x1", "NORTHWIND (Cloudway)", "customer", "northwind.de",
                         "kim@cloudway.example"),
        _partner_account("p1", "x2", "REDROCK (Cloudway)", "opportunity", "redrock.fr",
                         "kim@cloudway.example"),
        _partner_account("p1", "x3", "GREENFIELD (Cloudway)", "customer", "greenfield.de",
                         "kim@cloudway.example"),
        _partner_account("p1", "x4", "IRONCLAD (Cloudway)", "customer", "ironclad.de",
                         "kim@cloudway.example"),
        _partner_account("p2", "y1", "BLUEPEAK (Datastack)", "customer", "bluepeak.co.uk",
                         "lee@datastack.example"),
        _partner_account("p2", "y2", "SILVERLINE (Datastack)", "opportunity", "silverline.nl",
                         "lee@datastack.example"),
        _partner_account("p2", "y3", "BLUEWATER (Datastack)", "customer", "bluewater.es",
                         "lee@datastack.example"),
    ],
    "leads": [
        {"lead_id": "m1", "source_type": "mql", "created_at": (T0 - timedelta(days=10)).isoformat(),
         "account_id": "a8", "behavior_score": 70},
        {"lead_id": "m2", "source_type": "mql", "created_at": (T0 - timedelta(days=10)).isoformat(),
         "account_id": "a9", "behavior_score": 60},
    ],
    "opportunities": [
        {"opportunity_id": "o-mql", "account_id": "a8",
         "created_at": (T0 - timedelta(days=5)).isoformat(), "amount": 1000},
    ],
    "warmth_answers": [
        {"partner_id": "p1", "partner_account_id": "x1", "answer": "strong",
         "answered_at": (T0 - timedelta(days=2)).isoformat(), "answered_by": "kim"},
        {"partner_id": "p1", "partner_account_id": "x2", "answer": "strong",
         "answered_at": (T0 - timedelta(days=2)).isoformat(), "answered_by": "kim"},
        {"partner_id": "p1", "partner_account_id": "x4", "answer": "none",
         "answered_at": (T0 - timedelta(days=2)).isoformat(), "answered_by": "kim"},
        {"partner_id": "p2", "partner_account_id": "y1", "answer": "strong",
         "answered_at": (T0 - timedelta(days=2)).isoformat(), "answered_by": "lee"},
        {"partner_id": "p2", "partner_account_id": "y2", "answer": "some",
         "answered_at": (T0 - timedelta(days=2)).isoformat(), "answered_by": "lee"},
    ],
}

WON_AMOUNT = 51234.0  # on a1, p1's lead
LOST_AMOUNT = 77777.0  # on a2, p2's lead


# Both partners may see their overlaps with every population of ours (sharing is hidden by
# default); tests of the levels themselves set their own.
SHARING = "".join(
    f'[sharing.{pid}]\ncustomers = "overlaps"\nopen_opportunities = "overlaps"\n'
    f'prospects = "overlaps"\n\n'
    for pid in ("p1", "p2")
)


def build_web_world(folder: Path, store_url: str, *, toml: str = "") -> Workspace:
    """Two partners' leads through every stage: p1's a1 won after an intro, p2's a2 lost.

    Left for the tests: a3 (p1, rep r1) and a4 (p2, rep r2) routed and waiting; open warmth
    checks on x3 (p1) and y3 (p2); x4 (p1) answered 'none', a candidate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(
        f'[store]\nurl = "{store_url}"\n\n[measure]\nwindow_days = 30\n\n{SHARING}{toml}',
        encoding="utf-8",
    )
    for name, rows in WEB_WORLD.items():
        write_table(folder, name, rows)
    workspace = open_workspace(folder)
    assert import_workspace(folder, workspace.store).quarantined == 0
    map_accounts(workspace)
    qualify_leads(workspace, now=T0)
    act(workspace, now=T0, send=False)
    accept_lead(workspace, "L-a1", now=T0 + timedelta(hours=1))
    accept_lead(workspace, "L-a2", now=T0 + timedelta(hours=1))
    act(workspace, now=T0 + timedelta(hours=2), send=False)  # asks p1 and p2 for the intros
    mark_intro_made(workspace, "L-a1", now=T0 + timedelta(days=2))
    with workspace.store.engine.begin() as conn:
        conn.execute(insert(Opportunity), [
            {"opportunity_id": "o-won", "account_id": "a1", "created_at": T0 + timedelta(days=10),
             "stage": "Closed Won", "amount": WON_AMOUNT, "closed_at": T0 + timedelta(days=20),
             "is_won": True, "row_hash": "x"},
            {"opportunity_id": "o-lost", "account_id": "a2", "created_at": T0 + timedelta(days=8),
             "stage": "Closed Lost", "amount": LOST_AMOUNT, "closed_at": T0 + timedelta(days=15),
             "is_won": False, "row_hash": "y"},
        ])
    return workspace


_SQLITE_TEMPLATES: dict[str, Path] = {}


def fresh_web_world(
    folder: Path,
    store_url: str,
    template_dir: Path,
    *,
    setup: Callable[[Workspace], None] | None = None,
) -> Workspace:
    """A fresh web world (then `setup` run on it): on SQLite a copy of one built per session,
    else built anew."""
    prefix = "sqlite:///"
    if not store_url.startswith(prefix):
        workspace = build_web_world(folder, store_url)
        if setup is not None:
            setup(workspace)
        return workspace
    key = setup.__name__ if setup is not None else ""
    if key not in _SQLITE_TEMPLATES:
        built_in = template_dir / f"template-{key or 'plain'}"
        built = build_web_world(built_in / "ws", f"{prefix}{built_in / 'template.db'}")
        if setup is not None:
            setup(built)
        built.store.engine.dispose()  # checkpoints the WAL into the file
        _SQLITE_TEMPLATES[key] = built_in / "template.db"
    target = Path(store_url[len(prefix):])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_SQLITE_TEMPLATES[key], target)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(
        f'[store]\nurl = "{store_url}"\n\n[measure]\nwindow_days = 30\n\n{SHARING}',
        encoding="utf-8",
    )
    return open_workspace(folder)


@pytest.fixture
def world(
    tmp_path: Path, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """The web world on the store under test."""
    workspace = fresh_web_world(tmp_path / "ws", store_url, tmp_path_factory.getbasetemp())
    yield workspace
    workspace.store.engine.dispose()


def statuses(workspace: Workspace) -> dict[str, str]:
    with workspace.store.engine.connect() as conn:
        return {row.lead_id: row.status for row in conn.execute(select(Lead.lead_id, Lead.status))}


def test_the_world_has_every_state_the_tests_rely_on(world: Workspace) -> None:
    assert statuses(world) == {
        "L-a1": "intro_made", "L-a2": "intro_requested", "L-a3": "routed", "L-a4": "routed",
        "L-a5": "warmth_requested", "L-a6": "warmth_requested", "L-a7": "candidate",
    }


def test_a_digest_lists_only_the_partners_own_surfaced_leads_with_outcomes(
    world: Workspace,
) -> None:
    digest = partner_digest(world, "p1", now=NOW)
    outcomes = {lead.lead_id: lead.outcome for lead in digest.leads}
    assert outcomes == {"L-a1": "won", "L-a3": "routed"}  # not a5 (still asked), not a7, not p2's
    assert {lead.partner_id for lead in digest.leads} == {"p1"}
    won = next(lead for lead in digest.leads if lead.lead_id == "L-a1")
    assert won.partner_account_name == "NORTHWIND (Cloudway)"
    assert won.intro_requested_at is not None and won.intro_made_at == T0 + timedelta(days=2)
    assert won.opportunity_at == T0 + timedelta(days=10)
    assert won.amount is None  # amounts are not shared by default


def test_the_other_partners_digest_sees_its_lost_lead_and_waiting_intro(world: Workspace) -> None:
    digest = partner_digest(world, "p2", now=NOW)
    outcomes = {lead.lead_id: lead.outcome for lead in digest.leads}
    assert outcomes == {"L-a2": "lost", "L-a4": "routed"}
    intros = digest.scorecard.intros
    assert (intros.requested, intros.made, intros.waiting) == (1, 0, 1)
    assert intros.overdue == 1  # the intro was due three days after routing, 40 days ago


def test_every_scorecard_count_stands_beside_its_rate(world: Workspace) -> None:
    card = partner_digest(world, "p1", now=NOW).scorecard
    eql = card.line("eql")
    assert (eql.count, eql.base) == (2, 4)  # a1, a3 of the four accounts on p1's path
    assert eql.rate == pytest.approx(0.5)
    assert (card.line("won").count, card.line("won").base) == (1, 1)
    intro_made = card.line("intro_made")  # of routed: a partner may introduce before we ask
    assert intro_made.base == card.line("routed").count and intro_made.count == 1
    answered = card.line("answered")
    assert (answered.count, answered.base) == (0, 1)  # asked about x3 only, not answered yet
    assert all(line.base >= line.count for line in card.lines)


def test_the_scorecard_compares_the_partners_eqls_with_mqls(world: Workspace) -> None:
    card = partner_digest(world, "p1", now=NOW).scorecard
    assert card.mql_rate == pytest.approx(0.5)  # m1 converted, m2 did not
    assert card.conversion is not None
    assert (card.conversion.opportunities, card.conversion.measured) == (1, 2)
    assert card.conversion.rate_ratio_vs_mql == pytest.approx(1.0)


def test_amounts_appear_only_when_shared(world: Workspace) -> None:
    hidden = partner_digest(world, "p2", now=NOW)
    shown = partner_digest(world, "p2", now=NOW, amounts=True)
    assert all(lead.amount is None for lead in hidden.leads) and hidden.scorecard.pipeline is None
    lost = next(lead for lead in shown.leads if lead.lead_id == "L-a2")
    assert lost.amount == LOST_AMOUNT
    out = io.StringIO()
    write_digest_csv(hidden, out)
    assert "amount" not in out.getvalue() and "77777" not in out.getvalue()


def test_the_digest_csv_has_one_row_per_surfaced_lead(world: Workspace) -> None:
    out = io.StringIO()
    assert write_digest_csv(partner_digest(world, "p1", now=NOW), out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {r["lead_id"]: r["outcome"] for r in rows} == {"L-a1": "won", "L-a3": "routed"}
    assert all(r["partner_id"] == "p1" for r in rows)
    assert "a1" not in {r["partner_account_id"] for r in rows}  # our account id is not shown


def test_a_digest_for_an_unknown_partner_is_an_error(world: Workspace) -> None:
    with pytest.raises(UnknownPartner, match="no partner p9"):
        partner_digest(world, "p9", now=NOW)


def test_all_scorecards_match_each_partners_own_digest(world: Workspace) -> None:
    report = build_report(world, now=NOW)
    cards, opportunities = scorecards(world, report=report, now=NOW)
    assert set(cards) == {"p1", "p2", "p3"}
    for pid in ("p1", "p2"):
        own = partner_digest(world, pid, report=report, now=NOW).scorecard
        assert [(x.name, x.count, x.base) for x in cards[pid].lines] == [
            (x.name, x.count, x.base) for x in own.lines
        ]
    assert cards["p3"].line("eql").count == 0 and cards["p3"].line("eql").rate is None
    assert set(opportunities) == {"L-a1", "L-a2"}
    assert opportunities["L-a1"].won and opportunities["L-a2"].lost


def test_a_page_of_surfaced_leads_is_newest_first_and_stays_in_the_partner(
    world: Workspace,
) -> None:
    _, opportunities = scorecards(world, report=None, now=NOW)
    with world.store.engine.connect() as conn:
        first = surfaced_leads_page(conn, "p1", opportunities=opportunities, amounts=False,
                                    limit=1)
        second = surfaced_leads_page(conn, "p1", opportunities=opportunities, amounts=False,
                                     offset=1, limit=1)
    assert [lead.lead_id for lead in first] == ["L-a1"]  # changed last (intro made)
    assert [lead.lead_id for lead in second] == ["L-a3"]
    assert first[0].outcome == "won"


def test_digests_are_queued_once_per_partner_and_period(world: Workspace) -> None:
    first = queue_digests(world, now=NOW, period="2026-11")
    assert first.queued == ["p1", "p2"] and first.already_queued == []
    assert first.problems == ["partner p3 has no contact_email, so no digest was queued"]
    again = queue_digests(world, now=NOW + timedelta(hours=3), period="2026-11")
    assert again.queued == [] and again.already_queued == ["p1", "p2"]
    with world.store.engine.connect() as conn:
        rows = list(conn.execute(select(Delivery).where(Delivery.action == DIGEST)))
    assert sorted((r.lead_id, r.recipient) for r in rows) == [
        (digest_key("p1", "2026-11"), "alliances@cloudway.example"),
        (digest_key("p2", "2026-11"), "partners@datastack.example"),
    ]
    next_month = queue_digests(world, now=NOW, period="2026-12", partner_ids=["p1"])
    assert next_month.queued == ["p1"]


def test_the_digest_email_shows_rates_beside_counts_and_no_other_partner(
    world: Workspace,
) -> None:
    period = period_of(T0 + timedelta(days=2))  # the month the intro was made in
    queue_digests(world, now=NOW, period=period)
    with world.store.engine.connect() as conn:
        payload = conn.execute(
            select(Delivery.payload).where(Delivery.lead_id == digest_key("p1", period))
        ).scalar_one()
    text = payload["text"]
    assert payload["subject"].startswith(f"Your doorstep digest for {period}")
    assert "EQLs surfaced: 2 (50.0% of our accounts on your path, 4)" in text
    assert "(1 of 2 measured)" in text and "MQLs convert at 50.0%" in text
    assert "NORTHWIND (Cloudway): won" in text
    for other in ("Datastack", "BLUEPEAK", "L-a2", "p2", str(int(WON_AMOUNT))):
        assert other not in text


def test_a_partner_answer_is_stored_and_the_next_qualify_run_uses_it(world: Workspace) -> None:
    with world.store.engine.connect() as conn:
        open_checks = warmth_checks(conn, "p1")
    assert [c.partner_account_id for c in open_checks] == ["x3"]
    answer_warmth_check(world, "p1", "x3", "Strong", note="CFO is a friend", answered_by="kim@x",
                        now=NOW - timedelta(days=1))
    with world.store.engine.connect() as conn:
        assert warmth_checks(conn, "p1") == []
        answered = warmth_checks(conn, "p1", status="answered")
        stored = conn.execute(
            select(WarmthAnswer.answer, WarmthAnswer.note).where(
                WarmthAnswer.partner_account_id == "x3")
        ).one()
    assert {c.partner_account_id: c.answer for c in answered}["x3"] == "strong"
    assert tuple(stored) == ("strong", "CFO is a friend")
    card = partner_digest(world, "p1", now=NOW).scorecard
    assert (card.line("answered").count, card.line("warm").count) == (1, 1)
    qualify_leads(world, now=NOW)
    assert statuses(world)["L-a5"] == "eql"


def test_a_partner_cannot_answer_another_partners_check(world: Workspace) -> None:
    with pytest.raises(WarmthCheckNotFound):
        answer_warmth_check(world, "p1", "y3", "strong")
    with world.store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(WarmthAnswer)).scalar_one()
    assert count == len(WEB_WORLD["warmth_answers"])


@pytest.mark.parametrize("answer,note", [("maybe", None), ("some", "x" * 2001)])
def test_an_invalid_answer_is_refused(world: Workspace, answer: str, note: str | None) -> None:
    with pytest.raises(InvalidAnswer):
        answer_warmth_check(world, "p1", "x3", answer, note=note)


def test_a_rejected_lead_reports_only_its_reason_category(world: Workspace) -> None:
    reject_lead(world, "L-a3", "already_working", note="Ada knows the CEO personally",
                now=NOW - timedelta(hours=1))
    digest = partner_digest(world, "p1", now=NOW)
    rejected = next(lead for lead in digest.leads if lead.lead_id == "L-a3")
    assert (rejected.outcome, rejected.rejection_reason) == ("rejected", "already_working")
    out = io.StringIO()
    write_digest_csv(digest, out)
    assert "CEO" not in out.getvalue()
    assert digest.scorecard.line("rejected").count == 1


def with_smtp(workspace: Workspace, port: int) -> Workspace:
    """The workspace reopened with its email going to the SMTP server on `port`."""
    config = workspace.path / CONFIG_FILE
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[act]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n',
        encoding="utf-8",
    )
    workspace.store.engine.dispose()
    return open_workspace(workspace.path)


def test_sent_digests_reach_each_partner_once_per_period(
    world: Workspace, smtp_server: tuple[int, MailStore]  # noqa: F811
) -> None:
    port, mail = smtp_server
    workspace = with_smtp(world, port)
    first = queue_digests(workspace, now=NOW, period="2026-11", send=True)
    assert first.delivery is not None and first.delivery.failed == 0
    again = queue_digests(workspace, now=NOW, period="2026-11", send=True)
    assert again.queued == []
    digests = [(to, m["Subject"]) for _, to, m in mail.envelopes
               if m["Subject"].startswith("Your doorstep digest")]
    assert sorted(to for to, _ in digests) == [
        ["alliances@cloudway.example"], ["partners@datastack.example"]
    ]
    body = next(m for _, to, m in mail.envelopes if to == ["partners@datastack.example"]
                and m["Subject"].startswith("Your doorstep digest"))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    assert "Cloudway" not in text and "Datastack" in text
    workspace.store.engine.dispose()
