"""No vanity metric: wherever the text, JSON or HTML report shows a count of EQLs, the
conversion rate and the comparison with MQLs stand beside it."""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from doorstep.config import Config, MeasureConfig
from doorstep.demo_world import generate_world
from doorstep.ingest import import_workspace
from doorstep.measure import Report, build_report, render_text, report_json
from doorstep.measure.html import render_html
from doorstep.store import open_store
from doorstep.store.models import Lead, LeadEvent, Overlap
from doorstep.workspace import Workspace

TODAY = date(2026, 5, 1)
NOW = datetime.combine(TODAY, datetime.min.time())
RATE = re.compile(r"\d+\.\d%")  # a conversion rate as the report prints it: 33.3%
# a count: a whole number that is not part of a decimal, a percentage or a ratio
COUNT = re.compile(r"(?<![\d.,])\d[\d,]*(?![\d,]*(?:\.\d|%|x|×))")
REASONS = ("already in contact", "bad timing", "not a fit")


def seed_doorstep(path: Path, store_url: str) -> None:
    """Doorstep leads on the world's true overlaps, as map, qualify, act and track would."""
    with (path / "truth" / "overlaps.csv").open(encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    rng = random.Random(5)
    accounts: dict[str, dict[str, str]] = {}
    for pair in pairs:
        accounts.setdefault(pair["account_id"], pair)
    store = open_store(store_url)
    overlaps, leads, events = [], [], []
    for account_id, pair in sorted(accounts.items())[:600]:
        relationship = rng.choice(("customer", "opportunity", "prospect"))
        overlaps.append({**pair, "relationship": relationship, "method": "exact_domain",
                         "probability": 1.0, "mapped_at": NOW - timedelta(days=400)})
        status, failed = rng.choice(
            [("eql", ""), ("routed", ""), ("rejected", ""), ("candidate", "fit"),
             ("candidate", "overlap;fit"), ("warmth_requested", "warmth")]
        )
        created = NOW - timedelta(days=rng.randint(5, 400))
        lead_id = f"L-{account_id}"
        leads.append({
            "lead_id": lead_id, "account_id": account_id, "status": status,
            "partner_id": pair["partner_id"], "partner_account_id": pair["partner_account_id"],
            "failed_gates": failed, "warmth_score": rng.uniform(10, 95), "created_at": created,
            "updated_at": created,
        })
        if not failed:
            events.append({"lead_id": lead_id, "kind": "status_changed", "to_status": "eql",
                           "actor": "test", "at": created + timedelta(days=1)})
        if status == "rejected":
            events.append({"lead_id": lead_id, "kind": "rejected", "to_status": "rejected",
                           "actor": "rep", "at": created + timedelta(days=3),
                           "detail": {"reason": rng.choice(REASONS)}})
    with store.engine.begin() as conn:
        conn.execute(Overlap.__table__.insert(), overlaps)
        conn.execute(Lead.__table__.insert(), leads)
        conn.execute(LeadEvent.__table__.insert(), events)
    store.engine.dispose()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """A demo world with doorstep leads, every breakdown and a holdout, measured."""
    path = tmp_path_factory.mktemp("vanity")
    generate_world(path, accounts=2000, seed=21, today=TODAY)
    url = f"sqlite:///{path / 'doorstep.db'}"
    store = open_store(url)
    import_workspace(path, store)
    seed_doorstep(path, url)
    config = Config(measure=MeasureConfig(holdout_share=0.3))
    yield build_report(Workspace(path, config, store), now=NOW)
    store.engine.dispose()


def test_the_report_has_every_section_this_test_scans(report: Report) -> None:
    assert {"eql", "mql", "candidate", "candidate:fit"} <= set(report.lead_types)
    assert all(report.breakdowns[name].rows for name in report.breakdowns)
    assert report.holdout is not None and report.funnel
    origins = {r.origin: r.leads for r in report.breakdowns["origin"].rows}
    assert origins["doorstep"] > 200 and origins["imported"] > 100


def _has_comparison(text: str) -> bool:
    return bool(RATE.search(text) or "n/a" in text) and "MQL" in text


# --- text ------------------------------------------------------------------------------------


def _rendered(part: Any) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(part)
    return console.export_text()


def test_every_eql_count_in_the_text_report_has_its_rate_and_the_mql_comparison(
    report: Report,
) -> None:
    checked = 0
    for part in render_text(report):
        text = _rendered(part)
        if isinstance(part, Table):
            header = " ".join(str(c.header) for c in part.columns) + " " + str(part.title)
            about_eql = "eql" in header.lower()
            for line in text.splitlines():
                if not line.startswith("│"):  # data rows only
                    continue
                if (about_eql or "eql" in line.lower()) and COUNT.search(line):
                    assert _has_comparison(line), f"{part.title}: {line}"
                    checked += 1
        else:
            for line in text.splitlines():
                if "eql" in line.lower() and COUNT.search(line):
                    assert _has_comparison(line), line
                    checked += 1
    assert checked > 30


# --- JSON ------------------------------------------------------------------------------------

COUNT_KEYS = {"leads", "opportunities", "measured", "open", "count", "subjects", "events",
              "won", "eql_measured", "eql_opportunities"}
RATE_KEYS = {"rate", "eql_rate", "conversion_at_window"}
MQL_KEYS = {"mql_rate", "mql_conversion_at_window"}
RATIO_KEYS = {"rate_ratio_vs_mql", "rate_ratio"}


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, str(i)))


def _about_eql(path: tuple[str, ...], node: dict[str, Any]) -> bool:
    return (
        node.get("lead_type") == "eql"
        or node.get("step") == "eql"
        or (bool(path) and path[-1] == "eql")
        or any(key.startswith("eql_") for key in node)
    )


def test_every_eql_count_in_the_json_has_its_rate_and_the_mql_comparison(report: Report) -> None:
    checked = 0
    for path, node in _walk(report_json(report)):
        if not isinstance(node, dict) or not _about_eql(path, node):
            continue
        if not COUNT_KEYS & set(node):
            continue
        where = "/".join(path)
        assert RATE_KEYS & set(node), f"{where} has EQL counts without a rate"
        assert MQL_KEYS & set(node), f"{where} has EQL counts without the MQL rate"
        assert RATIO_KEYS & set(node), f"{where} has EQL counts without the ratio to MQLs"
        checked += 1
    assert checked > 20


# --- HTML ------------------------------------------------------------------------------------


class _Blocks(HTMLParser):
    """The text of every row, chart element, paragraph, caption and heading of a page."""

    BLOCKS = frozenset({"tr", "g", "p", "caption", "h1", "h2", "title", "li"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[list[str]] = []
        self.blocks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.stack.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS and self.stack:
            text = " ".join(self.stack.pop())
            self.blocks.append(text)
            if self.stack:  # a block's text also belongs to the block around it
                self.stack[-1].append(text)

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1].append(data)


def test_every_eql_count_in_the_html_has_its_rate_and_the_mql_comparison(report: Report) -> None:
    parser = _Blocks()
    parser.feed(render_html(report))
    checked = 0
    for block in parser.blocks:
        if "eql" in block.lower() and COUNT.search(block):
            assert _has_comparison(block), block
            checked += 1
    assert checked > 30


def test_the_scan_catches_a_bare_eql_count() -> None:
    # the checks above would fail on a page or a line that shows EQLs without their rate
    parser = _Blocks()
    parser.feed("<table><tr><td>eql</td><td>1,234</td></tr></table><p>EQLs: 52</p>")
    assert [b for b in parser.blocks if "eql" in b.lower() and COUNT.search(b)]
    assert not any(_has_comparison(b) for b in parser.blocks)
    assert not _has_comparison("eql 240 leads, 95% CI")
    assert _has_comparison("eql 240 leads, 33.3% [27.2%-40.1%], 3.94x MQL")
