"""Tests of the company-name matcher: real S&P/SEC pairs, look-alikes, variants and numbers."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from doorstep.map.comparison import compare
from doorstep.map.levels import LEVELS
from doorstep.map.matcher import match_names
from doorstep.map.profiles import TokenStats, profile

# S&P 500 common names and the SEC's legal titles for the same CIK, copied from
# /work/shared/data (public domain). Nobody here wrote them.
REAL_PAIRS = [
    ("3M", "3M CO"),
    ("A. O. Smith", "SMITH A O CORP"),
    ("Alphabet Inc. (Class A)", "Alphabet Inc."),
    ("Charles Schwab Corporation", "SCHWAB CHARLES CORP"),
    ("Costco", "COSTCO WHOLESALE CORP /NEW"),
    ("Cisco", "CISCO SYSTEMS, INC."),
    ("Supermicro", "Super Micro Computer, Inc."),
    ("O\u2019Reilly Automotive", "O REILLY AUTOMOTIVE INC"),
    ("Take-Two Interactive", "TAKE TWO INTERACTIVE SOFTWARE INC"),
    ("Lilly (Eli)", "ELI LILLY & Co"),
    ("Marsh McLennan", "MARSH & MCLENNAN COMPANIES, INC."),
    ("Johnson & Johnson", "JOHNSON & JOHNSON"),
    ("AT&T", "AT&T INC."),
    ("Procter & Gamble", "PROCTER & GAMBLE Co"),
    ("T. Rowe Price", "PRICE T ROWE GROUP INC"),
    ("J.B. Hunt", "HUNT J B TRANSPORT SERVICES INC"),
    ("D. R. Horton", "HORTON D R INC /DE/"),
    ("W. R. Berkley Corporation", "BERKLEY W R CORP"),
    ("Amazon", "AMAZON COM INC"),
    ("Coca-Cola Company (The)", "COCA COLA CO"),
    ("Hilton Worldwide", "Hilton Worldwide Holdings Inc."),
    ("Expeditors International", "EXPEDITORS INTERNATIONAL OF WASHINGTON INC"),
    ("LyondellBasell", "LyondellBasell Industries N.V."),
    ("Domino's", "DOMINOS PIZZA INC"),
    ("Goldman Sachs", "GOLDMAN SACHS GROUP INC"),
    ("Mettler Toledo", "METTLER TOLEDO INTERNATIONAL INC/"),
    ("U.S. Bancorp", "US BANCORP \\DE\\"),
    ("Carnival Corporation", "CARNIVAL CORP"),
    ("Lowe's", "LOWES COMPANIES INC"),
    ("Air Products", "Air Products & Chemicals, Inc."),
    ("Casey's", "CASEYS GENERAL STORES INC"),
    ("Apple Inc.", "Apple Inc."),
]
# Real SEC titles that are *other* companies, close to some of the names above.
REAL_DISTRACTORS = [
    "CARNIVAL PLC",
    "SHOE CARNIVAL INC",
    "Apple Hospitality REIT, Inc.",
    "Hilton Grand Vacations Inc.",
    "Goldman Sachs BDC, Inc.",
    "Coca-Cola Consolidated, Inc.",
    "Bancorp, Inc.",
    "JOHNSON CONTROLS INTERNATIONAL PLC",
    "AIR LEASE CORP",
]


def _tables(extra_left: list[dict[str, str]] | None = None,
            extra_right: list[dict[str, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the real pairs (ids L0.. and R0..) plus distractors and extra records."""
    left = [{"id": f"L{i}", "name": a} for i, (a, _) in enumerate(REAL_PAIRS)]
    right = [{"id": f"R{i}", "name": b} for i, (_, b) in enumerate(REAL_PAIRS)]
    right += [{"id": f"D{i}", "name": d} for i, d in enumerate(REAL_DISTRACTORS)]
    return pd.DataFrame(left + (extra_left or [])), pd.DataFrame(right + (extra_right or []))


def _pairs(out: pa.Table) -> set[tuple[str, str]]:
    """Return the (left_id, right_id) pairs of a result."""
    return set(zip(out["left_id"].to_pylist(), out["right_id"].to_pylist(), strict=True))


@pytest.fixture(scope="module")
def real_result() -> pa.Table:
    """Match the real pairs and distractors once."""
    left, right = _tables()
    return match_names(left, right, threshold=0.9)


def test_real_pairs_match_without_false_matches(real_result: pa.Table) -> None:
    found = _pairs(real_result)
    truth = {(f"L{i}", f"R{i}") for i in range(len(REAL_PAIRS))}
    assert found <= truth, f"false matches: {sorted(found - truth)}"
    missed = truth - found
    assert len(missed) <= 2, f"missed: {[REAL_PAIRS[int(a[1:])] for a, _ in sorted(missed)]}"


def test_real_output_has_probability_and_evidence(real_result: pa.Table) -> None:
    assert real_result.column_names == ["left_id", "right_id", "probability", "evidence"]
    for p, text in zip(real_result["probability"].to_pylist(),
                       real_result["evidence"].to_pylist(), strict=True):
        assert 0.9 <= p <= 1.0
        ev = json.loads(text)
        assert ev["agreed"][0] in ("name", "name_partial")
        assert ev["name"]["matched"], ev
        assert ev["name"]["words"] in LEVELS["words"]
        assert "prior" in ev["terms"] and "name_words_tf" in ev["terms"]


def test_lookalikes_do_not_match() -> None:
    left, right = _tables([{"id": "N1", "name": "Northwind Analytics"}],
                          [{"id": "N2", "name": "Northwind Logistics"}])
    found = _pairs(match_names(left, right))
    assert ("N1", "N2") not in found


def test_same_name_in_another_country_with_its_own_domain_does_not_match() -> None:
    left, right = _tables(
        [{"id": "A1", "name": "Acme Corp", "country": "US", "domain": "acme.com"}],
        [{"id": "A2", "name": "Acme Corp", "country": "DE", "domain": "acme-corp.de"}],
    )
    assert ("A1", "A2") not in _pairs(match_names(left, right))


def test_same_name_country_and_domain_matches() -> None:
    left, right = _tables(
        [{"id": "A1", "name": "Acme Corp", "country": "United States", "domain": "acme.com"}],
        [{"id": "A2", "name": "ACME CORPORATION", "country": "US", "domain": "acme.com"}],
    )
    out = match_names(left, right)
    assert ("A1", "A2") in _pairs(out)
    ev = json.loads(out.filter(pa.compute.equal(out["left_id"], "A1"))["evidence"][0].as_py())
    assert {"name", "country", "domain"} <= set(ev["agreed"])


@pytest.mark.parametrize(("ours", "theirs"), [
    ("Hartley & Moore Consulting Ltd", "HARTLEY AND MOORE CONSULTING"),
    ("Bold Harbor Logistics, Inc.", "bold harbor logistics llc"),
    ("Kestrel & Sons", "Kestrel and Sons Limited"),
    ("Quillfield Intl Holdings", "QUILLFIELD INTERNATIONAL HOLDINGS CORP."),
])
def test_legal_form_case_and_ampersand_variants_match(ours: str, theirs: str) -> None:
    left, right = _tables([{"id": "V1", "name": ours}], [{"id": "V2", "name": theirs}])
    assert ("V1", "V2") in _pairs(match_names(left, right))


def test_numbers_must_agree() -> None:
    left, right = _tables(
        [{"id": "F3", "name": "Sequoia Growth Fund 3"},
         {"id": "G3", "name": "Meridian Capital Partners III"}],
        [{"id": "F4", "name": "Sequoia Growth Fund 4"},
         {"id": "G3b", "name": "MERIDIAN CAPITAL PARTNERS 3 LP"}],
    )
    found = _pairs(match_names(left, right))
    assert ("F3", "F4") not in found
    assert ("G3", "G3b") in found
    stats = TokenStats([profile("Fund 3"), profile("Fund 4")])
    assert not compare(profile("Fund 3"), profile("Fund 4"), stats).possible


def test_ambiguous_short_name_is_not_matched() -> None:
    left, right = _tables([{"id": "H", "name": "Hilton"}])
    out = match_names(left, right)
    # "Hilton" could be "Hilton Worldwide Holdings" or "Hilton Grand Vacations": neither is sure
    assert not any(a == "H" for a, _ in _pairs(out))


@pytest.mark.parametrize(("a", "b", "feature", "level"), [
    ("Cisco", "CISCO SYSTEMS, INC.", "words", "one_extra"),
    ("Hilton Worldwide", "Hilton Worldwide Holdings Inc.", "words", "structural"),
    ("Northwind Analytics", "Northwind Logistics", "words", "conflict"),
    ("Acme Group", "Acme Freight", "words", "swapped"),
    ("Supermicro", "Super Micro Computer, Inc.", "kind", "joined"),
    ("IBM", "INTERNATIONAL BUSINESS MACHINES CORP", "kind", "acronym"),
    ("Northwind Analytics", "Nortwind Analytics", "kind", "typo"),
    ("Clever Dolphin Fleet", "Clever oDlphin Fleet", "kind", "typo"),
    ("Clever Dolphin Fleet", "Clever Golphin Fleet", "words", "conflict"),
    ("Charles Schwab Corporation", "SCHWAB CHARLES CORP", "first", "differs"),
    ("Carnival Corporation", "CARNIVAL PLC", "legal", "differs"),
])
def test_comparison_levels(a: str, b: str, feature: str, level: str) -> None:
    pa_, pb = profile(a), profile(b)
    cmp = compare(pa_, pb, TokenStats([pa_, pb]))
    k = list(LEVELS).index(feature)
    assert LEVELS[feature][cmp.levels[k]] == level


def test_stage_style_columns_and_groups() -> None:
    """The mapping stage passes name_key and country_code; a group keeps partners apart."""
    left, right = _tables()
    left = left.rename(columns={"name": "name_key"}).assign(country_code="US")
    right = pd.concat([right.assign(group="P1"), right.assign(group="P2")], ignore_index=True)
    right["id"] = right["group"] + ":" + right["id"]
    right = right.assign(country_code="US")
    found = _pairs(match_names(left, right))
    for partner in ("P1", "P2"):
        assert (("L5", f"{partner}:R5")) in found  # Cisco, at both partners


def test_empty_inputs() -> None:
    empty = pd.DataFrame({"id": pd.Series([], dtype=str), "name": pd.Series([], dtype=str)})
    out = match_names(empty, pd.DataFrame({"id": ["1"], "name": ["Acme"]}))
    assert out.num_rows == 0
    assert out.column_names == ["left_id", "right_id", "probability", "evidence"]


def test_website_column_gives_domain_evidence() -> None:
    left, right = _tables(
        [{"id": "W1", "name": "Harbor Lantern Foods", "website": "https://www.harborlantern.com/"}],
        [{"id": "W2", "name": "Harbor Lantern Foods", "website": "shop.harborlantern-foods.de"},
         {"id": "W3", "name": "HARBOR LANTERN FOODS LLC", "website": "harborlantern.com"}],
    )
    out = match_names(left, right)
    found = _pairs(out)
    assert ("W1", "W3") in found and ("W1", "W2") not in found


def test_a_handle_that_spells_our_name_finds_it_among_many_namesakes() -> None:
    # "eriksson" alone pairs the partner record with every Eriksson of ours; its LinkedIn handle
    # spells one of them whole, and blocking on such spellings makes that pair a candidate
    kinds = ["Analytics", "Freight", "Dental", "Foods", "Legal", "Media", "Metals", "Optics",
             "Retail", "Textiles", "Tutoring", "Ventures"]
    left = pd.DataFrame(
        [{"id": f"E{k}", "name": f"Eriksson {kind}", "country": "US",
          "website": f"eriksson{kind.lower()}.com"} for k, kind in enumerate(kinds)]
        + [{"id": "T", "name": "Eriksson Enterprises", "country": "US",
            "website": "erikssonenterprises.com"}])
    right = pd.DataFrame([{"id": "X", "name": "ERIKSSON CORP.", "country": "US",
                           "website": "https://www.linkedin.com/company/eriksson-enterprises"}])
    out = match_names(left, right, threshold=0.9)
    assert _pairs(out) == {("T", "X")}
    evidence = json.loads(out["evidence"][0].as_py())
    assert "name_in_website" in evidence["agreed"]
