"""A synthetic, realistic demo world: our CRM, partners' accounts, funnel history and the truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from doorstep.ingest.contract import TABLE_BY_NAME
from doorstep.store.models import CELL_OUTCOME

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Progress = Callable[[str, int], None]

DAY = 86_400
HISTORY_DAYS = 540  # about 18 months of funnel history

# --- the true funnel ---------------------------------------------------------------------------

SOURCE_SHARES = {"mql": 0.55, "event": 0.20, "sql": 0.15, "eql": 0.10}
P_OPPORTUNITY = {"eql": 0.28, "sql": 0.15, "mql": 0.07, "event": 0.04}
P_WIN = {"eql": 0.38, "sql": 0.27, "mql": 0.20, "event": 0.14}
P_WIN_NO_LEAD = 0.30
NO_LEAD_OPPORTUNITY_SHARE = 0.30  # opportunities not born from a lead, per lead-born one
LEADS_PER_ACCOUNT = 0.8
OPPORTUNITY_LINKS_LEAD = 0.70  # share of lead-born opportunities that carry lead_id
MQL_WITHOUT_ACCOUNT = 0.15
DAYS_TO_OPPORTUNITY = {"min": 3, "max": 120, "median_after_min": 18.0, "sigma": 0.8}
DAYS_TO_CLOSE = {"min": 14, "max": 300, "median_after_min": 45.0, "sigma": 0.6}

# --- geography ---------------------------------------------------------------------------------

# code, name, alpha-3, country domain, weight, territory ("NA" splits East/West), legal suffixes
_COUNTRIES: tuple[tuple[str, str, str, str, float, str, tuple[str, ...]], ...] = (
    ("US", "United States", "USA", "com", 40, "NA", ("Inc", "Inc.", "LLC", "Corp.", "Corporation")),
    ("GB", "United Kingdom", "GBR", "co.uk", 9, "EMEA-North", ("Ltd", "Limited", "PLC")),
    ("DE", "Germany", "DEU", "de", 8, "EMEA-North", ("GmbH", "AG", "GmbH & Co. KG")),
    ("FR", "France", "FRA", "fr", 6, "EMEA-South", ("SA", "SAS", "S.A.")),
    ("CA", "Canada", "CAN", "ca", 5, "NA", ("Inc", "Ltd", "Corp.")),
    ("NL", "Netherlands", "NLD", "nl", 4, "EMEA-North", ("B.V.", "BV", "N.V.")),
    ("AU", "Australia", "AUS", "com.au", 4, "APAC", ("Pty Ltd", "Pty. Ltd.")),
    ("IN", "India", "IND", "in", 4, "APAC", ("Pvt Ltd", "Private Limited")),
    ("JP", "Japan", "JPN", "co.jp", 3, "APAC", ("K.K.", "Co., Ltd.")),
    ("ES", "Spain", "ESP", "es", 3, "EMEA-South", ("S.L.", "S.A.")),
    ("BR", "Brazil", "BRA", "com.br", 3, "LATAM", ("Ltda", "S.A.")),
    ("SE", "Sweden", "SWE", "se", 2, "EMEA-North", ("AB",)),
    ("IT", "Italy", "ITA", "it", 2, "EMEA-South", ("S.p.A.", "S.r.l.")),
    ("MX", "Mexico", "MEX", "com.mx", 2, "LATAM", ("S.A. de C.V.",)),
    ("IE", "Ireland", "IRL", "ie", 1.5, "EMEA-North", ("Ltd", "Limited")),
    ("SG", "Singapore", "SGP", "sg", 1.5, "APAC", ("Pte Ltd",)),
    ("CH", "Switzerland", "CHE", "ch", 1, "EMEA-North", ("AG", "GmbH", "SA")),
    ("DK", "Denmark", "DNK", "dk", 1, "EMEA-North", ("A/S",)),
    ("BE", "Belgium", "BEL", "be", 1, "EMEA-North", ("NV", "SA")),
    ("PT", "Portugal", "PRT", "pt", 1, "EMEA-South", ("Lda", "S.A.")),
    ("AR", "Argentina", "ARG", "com.ar", 1, "LATAM", ("S.A.", "S.R.L.")),
)
C_CODE = [c[0] for c in _COUNTRIES]
C_NAME = [c[1] for c in _COUNTRIES]
C_ALPHA3 = [c[2] for c in _COUNTRIES]
C_TLD = [c[3] for c in _COUNTRIES]
C_WEIGHT = np.array([c[4] for c in _COUNTRIES], dtype=np.float64) / sum(c[4] for c in _COUNTRIES)
US = 0
TERRITORIES = ("NA-East", "NA-West", "EMEA-North", "EMEA-South", "APAC", "LATAM")
_REGION_LABEL = {"NA": "North America", "EMEA-North": "EMEA", "EMEA-South": "Southern Europe",
                 "APAC": "APAC", "LATAM": "LATAM"}
SUFFIXES: list[str] = sorted({s for c in _COUNTRIES for s in c[6]})
_COUNTRY_SUFFIXES = [np.array([SUFFIXES.index(s) for s in c[6]]) for c in _COUNTRIES]

# --- company words -------------------------------------------------------------------------------

_PREFIXES = """North South East West Blue Red Green Silver Gold Iron Stone Bright Clear Deep High
Far Swift True Sun Moon Star Sky Cloud Rain Snow Frost Fire Storm Wind Sea Lake River Oak Pine
Cedar Maple Birch Elm Ash Willow Fox Wolf Bear Hawk Eagle Falcon Raven Crow Lion Otter Elk Crane
Heron Swan Wren Lark Finch Robin Copper Cobalt Amber Ivory Jade Onyx Ruby Crystal Quartz Granite
Marble Coral Pearl Velvet Summit Ridge Harbor Bay Cove Meadow Forest Glen Brook Spring Bridge Gate
Tower Castle Anchor Compass Arrow Bolt Spark Pixel Quantum Vector Nova Apex Zen Terra Aero Aqua
Helio Lumen Opti Pulse Echo Orbit Polar Alpine Atlas Vertex Prism Delta Sigma Omni Neo Hyper Ever
Bell Cinder Dune Ember Flint Grove Haze Iris Juniper Kite Mist Night Dawn Dusk Tide Reef Shell
Thunder Lightning Timber Hollow Mesa Canyon Prairie Tundra Glacier Volcano Comet Meteor Solar
Lunar Astro Cyber Data Info Meta Micro Macro Nano Ultra Blu Kind Open""".split()
_ROOTS = """wind peak stone field brook wood gate bridge light water ridge point view crest line
path way works craft forge mark star fall port haven shore dale ford mont ton ly ify io ex ix
ara era ova ica eon ium sphere scape vault wave stream grid loop leaf root core hub nest spring bay
rock hill wing well mill moor bloom beam fleet glow frame lane side stack shift cast sense mind ware
bit byte logic flow tree field""".split()
_SINGLES = """Kestrel Meridian Halcyon Zenith Solstice Cascade Paragon Pinnacle Sentinel Beacon
Horizon Keystone Lighthouse Monarch Odyssey Phoenix Sequoia Voyager Wayfarer Catalyst Fulcrum
Lodestar Mosaic Nimbus Obsidian Quill Rampart Saffron Talon Umbra Vantage Waypoint Xenon Yarrow
Zephyr Bastion Citadel Dynamo Equinox Fathom Gossamer Hearth Ironclad Jubilee Kinetic Lattice
Magnolia Nautilus Parallax Quasar Radiant Sapphire Trellis Verdant Wildflower Axiom Borealis
Chronos Driftwood Elysian Firefly Galleon Hummingbird Indigo Kaleido Lumos Mariner Nectar
Outpost Pioneer Quarry Sterling Tidewater Upland Vireo Windward Aurora Calypso Ferrous Gryphon
Heliant Isotope Javelin Kodiak Labyrinth Mistral Nomad Oriel Pegasus Quorum Rhapsody Sorrel
Tamarack Ultima Vesper Whistler Yonder Zinnia""".split()
_ADJECTIVES = """Bold Brave Calm Noble Royal Grand Little Great Old Prime Rapid Wise Lucky Silent
Golden Hidden Modern Urban Rural Coastal Northern Southern Eastern Western Pacific Atlantic
Highland Twin Upper Lower Quiet Happy Honest Steady Simple Clever Vivid Wild Gentle Proud Rustic
Crimson Scarlet Azure Emerald Misty Sunny Windy Ancient Humble Mighty Nimble Keen Fair Kindred
Lively Merry Patient Rugged Sturdy Tall Young Early Distant Purple Orange Yellow White Black
Grey Loyal Clean Fresh Sharp Solid Smooth Warm Cool Hardy Jolly Polished Radiant Stellar
Vast""".split()
_NOUNS = """Harbor Lantern Anchor Oak Pine Owl Bear Hill Valley River Creek Canyon Mesa Prairie
Orchard Garden Mountain Island Coast Trail Road Bridge Tower Compass Arrow Sail Mill Barn Forge
Key Bell Crown Shield Stone Leaf Sparrow Bison Moose Heron Badger Rabbit Acorn Thistle Clover
Fern Ivy Birch Spruce Summit Peak Lake Pond Meadow Rock Ridge Beacon Wharf Falcon Fox Raven
Otter Panda Tiger Lynx Jaguar Pelican Dolphin Whale Salmon Trout Maple Willow Cedar Aspen Cypress
Juniper Lotus Orchid Poppy Tulip Daisy Sage Thyme Basil Pepper Ginger Cinnamon Compass Quill
Anvil Hammer Chisel Lens Prism Kite Sextant Lighthouse Pier Dock Castle Abbey Chapel Harbour
Gate Arch Column Dome Spire""".split()
_SURNAMES = """Hartley Moore Bennett Carter Ellis Fletcher Grant Hayes Irving Jensen Keller Lambert
Mercer Nolan Oakley Porter Quinn Reyes Sutton Thornton Underwood Vaughn Walsh Yates Abbott
Barrett Chandler Dalton Emerson Fischer Garrison Holloway Ingram Jacobs Kendall Lowell Maddox
Norris Osborne Pearson Ramsey Sinclair Tate Whitman Adler Baxter Caldwell Donovan Everett Foster
Gibson Harper Hughes Jennings Kirby Lawson Marsh Nash Owens Palmer Reid Sawyer Turner Vance
Wheeler Young Atwood Blake Crawford Drummond Eaton Forbes Gallagher Hampton Huxley Kemp Langley
Lindqvist Morrison Newton Ortega Prescott Radcliffe Shepherd Thatcher Upton Wainwright Whitaker
Ashford Bishop Coleman Dixon Fairbanks Godfrey Hale Hobbs Jarvis Knox Lockwood Mayfield Nichols
Parrish Redford Sherwood Stanton Tolliver Webb Wilder Ainsley Beckett Carmichael Delaney
Fairchild Goodwin Hastings Kingsley Lancaster Merriweather Northcott Pemberton Rutherford
Sterling Templeton Winslow Alvarez Brennan Costa Duarte Esposito Ferreira Gonzalez Herrera
Iglesias Jimenez Kowalski Lindgren Mendes Novak Olsen Petrov Rossi Santos Schmidt Silva Tanaka
Weber Yamamoto Zimmermann Becker Dubois Fontaine Garnier Laurent Lefevre Moreau Petit Richter
Schneider Vogel Wagner Bauer Hoffmann Kruger Lehmann Meyer Neumann Schulz Wolff Andersson
Berg Dahl Eriksson Holm Karlsson Lund Nilsson Strand Sato Suzuki Takahashi Watanabe Ito Kato
Nakamura Kobayashi Patel Sharma Gupta Mehta Rao Iyer Nair Kapoor Singh Chopra Oliveira Pereira
Almeida Barbosa Cardoso Moreno Navarro Romero Ruiz Torres Vargas Castillo Delgado Fuentes
Marquez Ramos Bianchi Colombo Ricci Romano Greco Conti Gallo Marino Rinaldi Ferrari Bruno
Brooks Campbell Douglas Fraser Graham Hamilton Kennedy MacLeod Murray Robertson Stewart Wallace
Ahmed Chen Kim Lee Lin Nguyen Park Tran Wong Zhang Byrne Doyle Fitzgerald Kavanagh Lynch
Murphy Nolan OBrien Quigley Sheridan Whelan Ashby Bramley Colby Denham Ellery Farrow Granger
Hollis Ibbotson Jessop Kimble Lyle Mallory Nettleton Orwell Pritchard Quimby Rowland Saxton
Tilbury Ventnor Wetherby Yardley""".split()
_FIRST_NAMES = """Ada Alan Alice Amara Amir Ana Andre Anika Ben Bianca Boris Carla Chen Chloe Chris
Clara Daniel Daria David Diego Elena Eli Emma Eric Eva Felix Fatima Finn Grace Hana Hugo Ian
Ines Isaac Ivy Jack Jade James Jana Jonas Julia Kai Karin Kenji Kim Lara Leo Lena Liam Lina
Lucas Luis Maya Marco Maria Mark Mateo Mei Mia Mila Nadia Nina Noah Nora Oliver Olga Omar Oscar
Paula Pedro Priya Rafael Raj Rosa Ruby Sam Sara Sofia Tara Theo Tom Uma Vera Victor Wei Yara
Yusuf Zoe Zara Aaron Beatriz Caleb Dana Elif Farah Gabriel Helena Ingrid Jonah Kofi Lucia
Mateus Nikolai Olivia Pablo Quentin Rhea Santiago Tomas Ursula Valentina Wendy Xavier Yuki
Zain Aisha Bruno Camille Dmitri Esther Frida Gustavo Hiro Irene Jorge Katya Lars Magnus Naomi
Otto Petra Ravi Sven Tessa Ulrich Viktor Willa""".split()
_SONS = ("& Sons", "& Partners", "& Co", "& Associates", "& Brothers", "& Daughters")
_GENERIC = """Global United National International Premier Advanced General Digital Smart Allied
Universal Integrated Strategic Applied Standard Consolidated Continental Metro Pro First""".split()
_GENERIC_NOUNS = """Business Network Tech Trade Service Resource Industrial Commercial Computer
Information Consumer Enterprise""".split()
INDUSTRIES = ("software", "fintech", "healthcare", "manufacturing", "retail", "logistics",
              "education", "media", "energy", "professional services")
INDUSTRY_WEIGHT = np.array([0.22, 0.09, 0.12, 0.13, 0.1, 0.1, 0.06, 0.07, 0.05, 0.06])
_DESCRIPTORS: tuple[tuple[int, str], ...] = tuple(
    (i, d) for i, words in enumerate((
        "Analytics Software Labs Systems Cloud Data Technologies AI Networks Security Digital "
        "Platforms Apps Robotics Computing",
        "Pay Capital Finance Payments Ledger Lending Wealth Financial Insurance",
        "Health Medical Care Bio Diagnostics Pharma Clinics Therapeutics Dental",
        "Manufacturing Industries Works Engineering Materials Machining Components Fabrication "
        "Plastics Metals",
        "Retail Stores Outfitters Goods Market Brands Home Foods Apparel",
        "Logistics Freight Shipping Transport Cargo Express Distribution Fleet",
        "Learning Academy Education Tutoring Schools Training",
        "Media Studios Publishing Productions Broadcasting Creative Entertainment",
        "Energy Power Solar Renewables Utilities",
        "Consulting Advisors Legal Accounting Staffing",
    )) for d in words.split()
) + tuple((-1, d) for d in "Group Solutions Holdings Company Enterprises Ventures Collective"
          .split())


def _stems() -> list[str]:
    """Distinctive first words: compounds like Northwind, Bluepeak, and single words."""
    seen: dict[str, None] = {}
    for p in _PREFIXES:
        for r in _ROOTS:
            if not p.lower().endswith(r) and p.lower() != r:
                seen.setdefault(p + r, None)
    for s in _SINGLES:
        seen.setdefault(s, None)
    return list(seen)


class _Vocab:
    """Every word a company name is built from, in one list so names are index triples."""

    def __init__(self) -> None:
        stems = _stems()
        # a surname that is also a stem would name two companies alike ("Sterling Capital")
        surnames = [s for s in dict.fromkeys(_SURNAMES) if s not in set(stems)]
        blocks: dict[str, list[str]] = {
            "stem": stems,
            "adjective": list(dict.fromkeys(_ADJECTIVES)),
            "noun": list(dict.fromkeys(_NOUNS)),
            "surname": surnames,
            "and_surname": ["& " + s for s in surnames],
            "sons": list(_SONS),
            "generic": _GENERIC,
            "generic_noun": _GENERIC_NOUNS,
            "descriptor": [d for _, d in _DESCRIPTORS],
        }
        self.words: list[str] = []
        self.start: dict[str, int] = {}
        self.size: dict[str, int] = {}
        for name, words in blocks.items():
            self.start[name] = len(self.words)
            self.size[name] = len(words)
            self.words.extend(words)
        self.array = pa.array(self.words, pa.string())
        self.desc_industry = np.array([i for i, _ in _DESCRIPTORS], dtype=np.int64)


# (name, share of companies, slot blocks; None = empty slot, "descriptor?" = optional)
_TEMPLATES: tuple[tuple[str, float, tuple[str | None, str | None, str | None]], ...] = (
    ("stem", 0.38, ("stem", None, "descriptor")),                  # Northwind Analytics
    ("adjective", 0.22, ("adjective", "noun", "descriptor")),      # Bold Harbor Logistics
    ("pair", 0.17, ("surname", "and_surname", "descriptor?")),     # Hartley & Moore (Consulting)
    ("sons", 0.03, ("surname", "sons", None)),                     # Kestrel & Sons
    ("surname", 0.10, ("surname", None, "descriptor")),            # Hartley Logistics
    ("generic", 0.10, ("generic", "generic_noun?", "descriptor")),  # Global Business Solutions
)
_OVERFLOW = 2  # the "pair" template is so large it takes what the others cannot hold
_MAX_FILL = 0.6


# --- small array helpers -----------------------------------------------------------------------


def _take(values: Sequence[str] | Any, idx: npt.NDArray[Any]) -> Any:
    """Strings of `values` at `idx`; a negative index gives a missing value."""
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    return arr.take(pa.array(idx.astype(np.int64), mask=idx < 0))


def _join(*parts: Any, sep: str = " ") -> Any:
    """Element-wise join skipping missing parts."""
    return pc.binary_join_element_wise(*parts, sep, null_handling="skip")


def _cat(*parts: Any) -> Any:
    """Element-wise concatenation; missing if any part is missing."""
    return pc.binary_join_element_wise(*parts, "")


def _assemble(choice: npt.NDArray[Any], builders: Sequence[Callable[[Ints], Any]]) -> Any:
    """One string array where row i comes from builders[choice[i]], each built on its rows only."""
    n = len(choice)
    parts, order = [], []
    for k, build in enumerate(builders):
        idx = np.flatnonzero(choice == k).astype(np.int64)
        if len(idx):
            parts.append(build(idx).cast(pa.string()))
            order.append(idx)
    if not parts:
        return pa.array([], pa.string())
    combined = pa.concat_arrays(parts)
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(n, dtype=np.int64)
    return combined.take(pa.array(inverse))


def _pick(rng: np.random.Generator, n: int, weights: Sequence[float] | npt.NDArray[Any]) -> Ints:
    """n draws of a category index with the given weights."""
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int64)


def _flat(values: Any) -> Any:
    """A plain Array from an Array or ChunkedArray."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _nulls(n: int) -> Any:
    """n missing strings."""
    return pa.nulls(n, pa.string())


def _ints(values: npt.NDArray[Any], missing: Bools | None = None) -> Any:
    """Whole numbers as text, missing where `missing` is set."""
    return pa.array(values.astype(np.int64), mask=missing).cast(pa.string())


def _bools(values: Bools, missing: Bools | None = None) -> Any:
    """Booleans as true/false, missing where `missing` is set."""
    return pc.if_else(pa.array(values, mask=missing), "true", "false")


def _times(seconds: Ints, missing: Bools | None = None) -> Any:
    """ISO 8601 date-times (no zone) from seconds since the epoch."""
    stamps = pa.array(seconds.astype(np.int64), pa.int64(), mask=missing).cast(pa.timestamp("s"))
    return pc.replace_substring(stamps.cast(pa.string()), " ", "T")


def _dates(seconds: Ints, missing: Bools | None = None) -> Any:
    """ISO 8601 dates from seconds since the epoch."""
    stamps = pa.array(seconds.astype(np.int64), pa.int64(), mask=missing).cast(pa.timestamp("s"))
    return stamps.cast(pa.date32()).cast(pa.string())


def _ids(prefix: str, n: int, start: int = 1, width: int | None = None) -> Any:
    """Zero-padded ids: A000001, A000002, ..."""
    width = width or max(6, len(str(n + start)))
    numbers = pa.array(np.arange(start, start + n, dtype=np.int64)).cast(pa.string())
    return _cat(pa.scalar(prefix), pc.utf8_lpad(numbers, width=width, padding="0"))


def _lognormal_days(rng: np.random.Generator, n: int, spec: dict[str, float]) -> Ints:
    """Whole-second durations: min + lognormal(median, sigma) days, capped at max."""
    days = spec["min"] + rng.lognormal(np.log(spec["median_after_min"]), spec["sigma"], n)
    return (np.minimum(days, spec["max"]) * DAY).astype(np.int64)


# --- companies ---------------------------------------------------------------------------------


@dataclass
class _Companies:
    """Real companies of the world (ours and partners'), one row each, as arrays."""

    w1: Ints
    w2: Ints
    w3: Ints
    country: Ints
    industry: Ints
    employees: Ints
    revenue: Ints
    suffix: Ints          # index into SUFFIXES: the company's legal form
    name: Any             # base name without legal suffix
    domain: Any           # e.g. northwindanalytics.com
    label: Any            # e.g. northwindanalytics
    tld: Any


def _sample_names(rng: np.random.Generator, vocab: _Vocab, n: int) -> tuple[Ints, Ints, Ints]:
    """n distinct (w1, w2, w3) word triples spread over the name templates."""
    caps, radices = [], []
    for _, _, slots in _TEMPLATES:
        sizes = [1 if s is None else vocab.size[s.rstrip("?")] + s.endswith("?") for s in slots]
        radices.append(sizes)
        caps.append(int(np.prod(sizes)))
    want = [int(round(n * share)) for _, share, _ in _TEMPLATES]
    want[_OVERFLOW] += n - sum(want)
    for k, cap in enumerate(caps):
        limit = int(cap * _MAX_FILL)
        if k != _OVERFLOW and want[k] > limit:
            want[_OVERFLOW] += want[k] - limit
            want[k] = limit
    if want[_OVERFLOW] > caps[_OVERFLOW] * 0.9:
        raise ValueError(f"{n:,} companies is more than the name generator can make unique")
    w = [np.empty(0, np.int64)] * 3
    for k, (_, _, slots) in enumerate(_TEMPLATES):
        codes = rng.choice(caps[k], size=want[k], replace=False).astype(np.int64)
        for j, slot in enumerate(slots):
            size = radices[k][j]
            digit = codes % size
            codes //= size
            if slot is None:
                col = np.full(want[k], -1, np.int64)
            else:
                block = slot.rstrip("?")
                col = vocab.start[block] + digit
                if slot.endswith("?"):
                    col = np.where(digit == vocab.size[block], -1, col)
            w[j] = np.concatenate([w[j], col])
    order = rng.permutation(n)
    return w[0][order], w[1][order], w[2][order]


def _base_names(vocab: _Vocab, w1: Ints, w2: Ints, w3: Ints) -> Any:
    """Company names (without legal suffix) from their word triples."""
    return _join(_take(vocab.array, w1), _take(vocab.array, w2), _take(vocab.array, w3))


def _label(names: Any, sep: str = "") -> Any:
    """A domain label from a base company name (letters, spaces and '&' only)."""
    text = pc.replace_substring(pc.utf8_lower(names), " & ", " ")
    return pc.replace_substring(text, " ", sep)


def _industry(rng: np.random.Generator, vocab: _Vocab, w3: Ints) -> Ints:
    """The industry a name's descriptor implies; a random one for generic descriptors."""
    desc = np.where(w3 >= 0, w3 - vocab.start["descriptor"], 0)
    industry = np.where(w3 >= 0, vocab.desc_industry[desc], -1)
    generic = industry < 0
    industry[generic] = _pick(rng, int(generic.sum()), INDUSTRY_WEIGHT)
    return industry


def _companies(rng: np.random.Generator, vocab: _Vocab, n: int) -> _Companies:
    """n real companies with unique names and domains."""
    w1, w2, w3 = _sample_names(rng, vocab, n)
    names = _base_names(vocab, w1, w2, w3)
    labels = _label(names)
    # A name can, rarely, spell the same domain as another (Bold+Harbor vs Boldharbor): redraw.
    for _ in range(20):
        dup = np.asarray(_duplicated(labels))
        if not dup.any():
            break
        w3 = w3.copy()
        w3[dup] = vocab.start["descriptor"] + rng.integers(0, vocab.size["descriptor"], dup.sum())
        names = _base_names(vocab, w1, w2, w3)
        labels = _label(names)
    country = _pick(rng, n, C_WEIGHT)
    industry = _industry(rng, vocab, w3)
    employees = np.clip(rng.lognormal(np.log(120), 1.55, n), 5, 50_000).astype(np.int64)
    per_head = np.array([220, 260, 160, 190, 140, 150, 90, 170, 300, 130], np.float64)[industry]
    revenue = employees * per_head * 1000 * rng.lognormal(0, 0.45, n)
    revenue_k = (np.round(revenue / 1000) * 1000).astype(np.int64)
    suffix = np.empty(n, np.int64)
    for c, options in enumerate(_COUNTRY_SUFFIXES):
        rows = np.flatnonzero(country == c)
        suffix[rows] = options[rng.integers(0, len(options), len(rows))]
    r = rng.random(n)
    tld_idx = np.where(country == US, np.where(r < 0.92, 0, 1), np.where(r < 0.55, 2, 0))
    cc = _take(C_TLD, country)
    tld = _assemble(tld_idx, [lambda i: pa.repeat(pa.scalar("com"), len(i)),
                              lambda i: pa.repeat(pa.scalar("io"), len(i)),
                              lambda i: cc.take(pa.array(i))])
    domain = _join(labels, tld, sep=".")
    return _Companies(w1, w2, w3, country, industry, employees, revenue_k, suffix, names, domain,
                      labels, tld)


def _duplicated(values: Any) -> Bools:
    """True for every occurrence of a value after its first."""
    codes = np.asarray(_flat(pc.dictionary_encode(values)).indices)
    keep = np.zeros(len(values), dtype=bool)
    keep[np.unique(codes, return_index=True)[1]] = True
    return ~keep


def _lookalikes(rng: np.random.Generator, vocab: _Vocab, co: _Companies, ours: Ints,
                targets: Ints) -> Ints:
    """Give each company in `targets` the distinctive words of one of ours but another business.

    Returns the targets that became such look-alikes ("Northwind Analytics" / "Northwind Freight").
    """
    source = rng.choice(ours, size=len(targets), replace=len(targets) > len(ours))
    has_desc = co.w3[source] >= 0
    source, targets = source[has_desc], targets[has_desc]
    desc = rng.integers(0, vocab.size["descriptor"], len(source))
    for _ in range(10):
        same = (vocab.desc_industry[desc] == co.industry[source]) | (vocab.desc_industry[desc] < 0)
        if not same.any():
            break
        desc[same] = rng.integers(0, vocab.size["descriptor"], int(same.sum()))
    other = (vocab.desc_industry[desc] != co.industry[source]) & (vocab.desc_industry[desc] >= 0)
    source, targets, desc = source[other], targets[other], desc[other]
    w3 = vocab.start["descriptor"] + desc
    names = _base_names(vocab, co.w1[source], co.w2[source], w3)
    labels = _label(names)
    existing = pa.concat_arrays([co.label, labels])
    ok = ~_duplicated(existing)[len(co.label):]
    source, targets, w3 = source[ok], targets[ok], w3[ok]
    co.w1[targets], co.w2[targets], co.w3[targets] = co.w1[source], co.w2[source], w3
    co.industry[targets] = vocab.desc_industry[w3 - vocab.start["descriptor"]]
    names, labels = names.filter(pa.array(ok)), labels.filter(pa.array(ok))
    co.name = _replace(co.name, targets, names)
    co.label = _replace(co.label, targets, labels)
    co.domain = _replace(co.domain, targets, _join(labels, co.tld.take(pa.array(targets)), sep="."))
    return targets


def _twins(rng: np.random.Generator, co: _Companies, ours: Ints, targets: Ints) -> Ints:
    """Make each target company carry the exact name of one of ours, elsewhere, with its own domain.

    Returns the companies of ours that now have a same-name twin abroad.
    """
    source = rng.choice(ours, size=min(len(targets), len(ours)), replace=False)
    targets = targets[: len(source)]
    shift = rng.integers(1, len(_COUNTRIES), len(source))
    country = (co.country[source] + shift) % len(_COUNTRIES)
    co.w1[targets], co.w2[targets], co.w3[targets] = co.w1[source], co.w2[source], co.w3[source]
    co.industry[targets] = co.industry[source]
    co.country[targets] = country
    co.suffix[targets] = [int(_COUNTRY_SUFFIXES[c][0]) for c in country]
    names = co.name.take(pa.array(source))
    # half spell their website apart (northwind-analytics.de), half keep our company's own
    # label under their country's domain (northwindanalytics.de beside .com): the same brand,
    # another company, which only the country and the differing domain tell apart
    dashed = _label(names, sep="-")
    same = co.label.take(pa.array(source))
    tld = _take(C_TLD, country)
    own_tld = co.tld.take(pa.array(source)).to_pylist()
    # (not under .com: a partner may write a company's .com for its country domain, and then
    # the twin's record would spell our own website)
    keep = [bool(k) and t != o and o != "com" for k, t, o in
            zip(rng.random(len(source)) < 0.5, tld.to_pylist(), own_tld, strict=True)]
    labels = pa.array([s if k else d for s, d, k in
                       zip(same.to_pylist(), dashed.to_pylist(), keep, strict=True)], pa.string())
    co.name = _replace(co.name, targets, names)
    co.label = _replace(co.label, targets, labels)
    co.tld = _replace(co.tld, targets, tld)
    co.domain = _replace(co.domain, targets, _join(labels, tld, sep="."))
    return source


def _replace(values: Any, idx: Ints, new: Any) -> Any:
    """values with positions idx replaced by new."""
    choice = np.zeros(len(values), dtype=np.int64)
    choice[idx] = 1
    order = np.argsort(idx, kind="stable")
    sorted_new = new.take(pa.array(order))
    return _assemble(choice, [lambda i: values.take(pa.array(i)), lambda i: sorted_new])


# --- messy renderings ----------------------------------------------------------------------------


def _typos(rng: np.random.Generator, names: Any) -> Any:
    """The same names, each with one character deleted, replaced, swapped or doubled."""
    ops = rng.integers(0, 4, len(names))
    where = rng.random(len(names))
    letters = rng.integers(0, 26, len(names))
    out = []
    for s, op, f, ch in zip(names.to_pylist(), ops.tolist(), where.tolist(), letters.tolist(),
                            strict=True):
        if len(s) < 4:
            out.append(s)
            continue
        i = 1 + int(f * (len(s) - 2))
        while i < len(s) - 1 and not s[i].isalpha():
            i += 1
        if op == 0:
            s = s[:i] + s[i + 1:]
        elif op == 1:
            c = chr(97 + ch) if chr(97 + ch) != s[i].lower() else chr(97 + (ch + 1) % 26)
            s = s[:i] + (c.upper() if s[i].isupper() else c) + s[i + 1:]
        elif op == 2 and i + 1 < len(s):
            s = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        else:
            s = s[:i] + s[i] + s[i:]
        out.append(s)
    return pa.array(out, pa.string())


def _partner_names(rng: np.random.Generator, vocab: _Vocab, co: _Companies, ent: Ints) -> Any:
    """A partner's spelling of each company: legal form, case, '&'/'and', dropped words, typos."""
    n = len(ent)
    w3 = np.where((rng.random(n) < 0.06) & (co.w3[ent] >= 0), -1, co.w3[ent])
    base = _base_names(vocab, co.w1[ent], co.w2[ent], w3)
    base = pc.if_else(pa.array(rng.random(n) < 0.5), pc.replace_substring(base, " & ", " and "),
                      base)
    typo = (rng.random(n) < 0.05).astype(np.int64)
    base = _assemble(typo, [lambda i: base.take(pa.array(i)),
                            lambda i: _typos(rng, base.take(pa.array(i)))])
    alt = np.empty(n, np.int64)
    country = co.country[ent]
    for c, options in enumerate(_COUNTRY_SUFFIXES):
        rows = np.flatnonzero(country == c)
        alt[rows] = options[rng.integers(0, len(options), len(rows))]
    form = _pick(rng, n, [0.40, 0.35, 0.25])
    suffix = np.where(form == 0, co.suffix[ent], np.where(form == 1, -1, alt))
    name = _join(base, _take(SUFFIXES, suffix))
    case = _pick(rng, n, [0.8, 0.1, 0.1])
    return _assemble(case, [lambda i: name.take(pa.array(i)),
                            lambda i: pc.utf8_upper(name.take(pa.array(i))),
                            lambda i: pc.utf8_lower(name.take(pa.array(i)))])


_FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com")
_SUBDOMAINS = ("shop", "app", "eu", "us", "go", "info", "portal", "my")
_PATHS = ("/", "/about", "/contact", "/en-us/", "/home")
_ROLES = ("sales", "info", "admin", "contact", "office")


def _partner_websites(rng: np.random.Generator, co: _Companies, ent: Ints) -> Any:
    """The website field of a partner's record: any of the forms real CRMs hold, or missing."""
    n = len(ent)
    dom = co.domain.take(pa.array(ent))
    label = co.label.take(pa.array(ent))
    country = co.country[ent]
    own_cc = pc.equal(co.tld.take(pa.array(ent)), _take(C_TLD, country))
    # the other form of an international company's domain: x.co.uk for x.com and back
    other = _join(label, pc.if_else(own_cc, "com", _take(C_TLD, country)), sep=".")

    def part(values: Any) -> Callable[[Ints], Any]:
        return lambda i: values.take(pa.array(i))

    def around(pre: str, values: Any, post: Any = "") -> Callable[[Ints], Any]:
        return lambda i: _cat(pa.scalar(pre), values.take(pa.array(i)), post)

    def choose(options: Sequence[str]) -> Callable[[Ints], Any]:
        return lambda i: _take(options, rng.integers(0, len(options), len(i)))

    slug = _label(co.name.take(pa.array(ent)), sep="-")
    forms: list[Callable[[Ints], Any]] = [
        lambda i: _nulls(len(i)),
        part(dom),
        lambda i: _cat(pa.scalar("https://www."), dom.take(pa.array(i)), choose(_PATHS)(i)),
        lambda i: pc.utf8_upper(_cat(pa.scalar("http://"), dom.take(pa.array(i)))),
        around("", dom, pa.scalar("/")),
        around("www.", dom),
        around("http://", dom),
        lambda i: _join(choose(_SUBDOMAINS)(i), dom.take(pa.array(i)), sep="."),
        part(other),
        lambda i: _cat(choose(("", "https://www.", "www."))(i), pa.scalar("linkedin.com/company/"),
                       slug.take(pa.array(i))),
        lambda i: _cat(label.take(pa.array(i)), pa.scalar("."), choose(_ROLES)(i),
                       pa.scalar("@"), choose(_FREE_MAIL)(i)),
    ]
    weights = [0.15, 0.22, 0.10, 0.05, 0.06, 0.12, 0.07, 0.06, 0.08, 0.05, 0.04]
    return _assemble(_pick(rng, n, weights), forms)


def _country_texts(rng: np.random.Generator, country: Ints,
                   weights: Sequence[float] = (0.48, 0.22, 0.10, 0.15, 0.05)) -> Any:
    """Countries as alpha-2, name, alpha-3, missing or lower-case name."""
    lower = [c.lower() for c in C_NAME]
    forms = [lambda i: _take(C_CODE, country[i]), lambda i: _take(C_NAME, country[i]),
             lambda i: _take(C_ALPHA3, country[i]), lambda i: _nulls(len(i)),
             lambda i: _take(lower, country[i])]
    return _assemble(_pick(rng, len(country), weights), forms)


def _our_websites(rng: np.random.Generator, domains: Any) -> Any:
    """Our CRM's website field: mostly www.x.com, sometimes a URL, rarely missing."""
    forms = [lambda i: _cat(pa.scalar("www."), domains.take(pa.array(i))),
             lambda i: _cat(pa.scalar("https://www."), domains.take(pa.array(i))),
             lambda i: domains.take(pa.array(i)),
             lambda i: _cat(pa.scalar("http://"), domains.take(pa.array(i)), pa.scalar("/")),
             lambda i: _nulls(len(i))]
    return _assemble(_pick(rng, len(domains), [0.55, 0.2, 0.15, 0.05, 0.05]), forms)


# --- people --------------------------------------------------------------------------------------


def _people(rng: np.random.Generator, n: int, domain: str) -> tuple[list[str], list[str]]:
    """n distinct people: full names and first.last emails at `domain`."""
    space = len(_FIRST_NAMES) * len(_SURNAMES)
    rounds = -(-n // space)
    codes = np.concatenate([rng.permutation(space) for _ in range(rounds)])[:n]
    names, emails = [], []
    for k, code in enumerate(codes.tolist()):
        first, last = _FIRST_NAMES[code % len(_FIRST_NAMES)], _SURNAMES[code // len(_FIRST_NAMES)]
        extra = "" if k < space else str(k // space)
        names.append(f"{first} {last}")
        emails.append(f"{first.lower()}.{last.lower()}{extra}@{domain}")
    return names, emails


_PARTNERS = (
    ("Skyline Cloud Marketplace", "SKY", "skylinecloud.com"),
    ("Meridian Systems Integration", "MSI", "meridian-si.com"),
    ("Channelpoint Resellers", "CHP", "channelpoint.com"),
    ("Integrio", "INT", "integrio.io"),
    ("Bytebridge Distribution", "BYB", "bytebridge.com"),
    ("Cobaltline Consulting", "COB", "cobaltline.com"),
    ("Stratus Marketplace", "STR", "stratusmarket.com"),
    ("Ledgerly", "LED", "ledgerly.io"),
    ("Harborview Managed Services", "HMS", "harborview-ms.com"),
    ("Tandem Data Platform", "TDP", "tandemdata.io"),
)

_NOTES = {
    "strong": ("Exec sponsor is close to their CIO", "We run their platform; happy to intro",
               "Weekly call with their VP Engineering", "Champion just renewed with us",
               "Co-sold with them last year"),
    "some": ("Know a director in IT", "Met at a conference, could try",
             "Contact left recently, new one is friendly", "Working on a small project there",
             "Their procurement knows us"),
    "none": ("No active contact", "Relationship went cold", "Only a billing contact",
             "Lost the account owner last quarter", "Never spoken to them"),
}
_OPEN_STAGES = ("Discovery", "Qualification", "Proposal", "Negotiation")

# --- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldSummary:
    """What generate_world wrote: row counts per table, the true overlaps and funnel rates."""

    path: Path
    counts: dict[str, int]           # rows per data/<table>.csv, bad rows included
    true_overlaps: int               # (account, partner account) pairs in truth/overlaps.csv
    overlapping_accounts: int        # our accounts with at least one true overlap
    bad_rows: int
    conversion: dict[str, float]     # true P(opportunity | lead) per source type
    win_rates: dict[str, float]      # true P(won | opportunity) per source type


@dataclass
class _Table:
    """One table being built: contract columns as string arrays, plus bad rows to mix in."""

    name: str
    columns: dict[str, Any]
    bad: list[tuple[dict[str, str], str, str, int | None]]  # row, column, reason, after row

    @property
    def rows(self) -> int:
        """Number of good rows."""
        return len(next(iter(self.columns.values())))


def generate_world(path: Path, *, accounts: int = 5000, partners: int = 4,
                   partner_accounts: int | None = None, seed: int = 7,
                   today: date | None = None, bad_rows: bool = True,
                   progress: Progress | None = None) -> WorldSummary:
    """Write a synthetic workspace's data/ tables and the truth/ behind them to `path`."""
    if accounts < 50:
        raise ValueError("a demo world needs at least 50 accounts")
    if partners < 1:
        raise ValueError("a demo world needs at least one partner")
    today = today or date.today()
    rng = np.random.default_rng(seed)
    now = int(np.datetime64(today, "s").astype(np.int64))
    vocab = _Vocab()
    per_partner = max(1000, int(0.6 * accounts)) if partner_accounts is None else partner_accounts
    if per_partner < 10:
        raise ValueError("each partner needs at least 10 accounts")

    # -- who exists: our companies first, then the ones only partners have
    n_dup = max(2, round(0.01 * accounts))
    n_ours = accounts - n_dup
    share = rng.uniform(0.4, 0.6, partners)
    n_overlap = np.minimum(np.round(per_partner * share).astype(np.int64), n_ours)
    n_other = per_partner - n_overlap
    n_pool = int(max(n_other.max(), round(0.7 * n_other.sum()), 10))
    co = _companies(rng, vocab, n_ours + n_pool)
    ours = np.arange(n_ours, dtype=np.int64)
    pool = np.arange(n_ours, n_ours + n_pool, dtype=np.int64)
    n_alike = min(max(partners, round(0.04 * n_pool)), n_pool // 3)
    n_twins = min(max(partners, round(0.01 * n_pool)), n_pool // 3)
    alike = _lookalikes(rng, vocab, co, ours, pool[:n_alike])
    _twins(rng, co, ours, pool[n_alike:n_alike + n_twins])
    twins = pool[n_alike:n_alike + min(n_twins, n_ours)]
    lookalikes = np.concatenate([alike, twins])

    # -- reps, then our accounts: one row per company of ours, plus regional duplicates
    out = _Writer(path, seed, bad_rows, now, progress)
    reps = _reps(rng, max(8, round(accounts / 150)))
    out.emit(reps.pop("table"))
    partner_table = _partners(rng, partners, reps)
    out.emit(partner_table)
    acc = _accounts(rng, co, ours, n_dup, reps)
    out.emit(acc.pop("table"))

    # -- partners' accounts and the truth about which are ours
    records = _partner_records(rng, acc, n_overlap, n_other, pool, lookalikes, partners)
    _partner_facts(rng, records, partner_table, now)
    out.emit_parts(_partner_account_tables(rng, vocab, co, records))
    del co
    pairs = _truth_pairs(acc, records)

    # -- funnel history and warmth
    leads, lead_info = _leads(rng, acc, reps, pairs, now)
    out.emit(leads)
    out.emit(_opportunities(rng, acc, lead_info, now))
    out.emit(_warmth(rng, records, now))

    truth = path / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    _write_csv(truth / "overlaps.csv", ["account_id", "partner_id", "partner_account_id"],
               [pairs["account_id"], pairs["partner_id"], pairs["partner_account_id"]])
    problems = [(*p, _outcome(str(p[0]), str(p[2]))) for p in sorted(out.problems)]
    _write_csv(truth / "bad_rows.csv", ["file", "row", "column", "reason", "outcome"],
               [pa.array([str(p[i]) for p in problems], pa.string()) for i in range(5)])
    (truth / "conversion.json").write_text(
        json.dumps(_conversion_truth(seed, today, lead_info), indent=2) + "\n", encoding="utf-8")
    (truth / "README.md").write_text(_TRUTH_README, encoding="utf-8")
    if progress:
        progress("truth", len(pairs["account_id"]))
    return WorldSummary(path=path, counts=out.counts, true_overlaps=len(pairs["account_id"]),
                        overlapping_accounts=len(pc.unique(pairs["account_id"])),
                        bad_rows=len(problems), conversion=dict(P_OPPORTUNITY),
                        win_rates=dict(P_WIN))


class _Writer:
    """Writes each table to data/ as soon as it is built, with its bad rows mixed in."""

    def __init__(self, path: Path, seed: int, bad_rows: bool, now: int,
                 progress: Progress | None) -> None:
        self.data = path / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        # its own generator, so the good rows are the same with or without bad ones
        self.rng = np.random.default_rng([seed, 1])
        self.bad_rows = bad_rows
        self.now = now
        self.progress = progress
        self.refs: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.problems: list[tuple[str, int, str, str]] = []

    def emit(self, table: _Table) -> None:
        """Add the table's bad rows, write it, and report it."""
        self.emit_parts(iter([table]))

    def emit_parts(self, parts: Iterator[_Table]) -> None:
        """Write one table given in consecutive parts; its bad rows go into the first part."""
        done = 0
        for k, table in enumerate(parts):
            spec = TABLE_BY_NAME[table.name]
            if self.bad_rows and k == 0:
                _add_bad_rows(self.rng, table, self.refs, self.now)
            columns, landed = _mix_bad_rows(self.rng, table)
            _write_csv(self.data / f"{table.name}.csv", spec.column_names,
                       [columns[c] for c in spec.column_names], append=k > 0)
            done += len(columns[spec.column_names[0]])
            self.counts[table.name] = done
            self.problems += [(f"data/{table.name}.csv", row, col, why)
                              for row, col, why in landed]
        if self.progress:  # once per table, so callers can count tables
            self.progress(table.name, done)


_TRUTH_README = """\
# truth/

This folder is the answer key of a synthetic demo world made by `doorstep demo`; doorstep itself
never reads it. `overlaps.csv` lists every pair (account_id, partner_id, partner_account_id) where
a partner's record is truly the same company as one of our accounts (both rows when we hold a
company twice); `conversion.json` holds the true probabilities of a lead becoming an opportunity
and of that opportunity being won, per lead source type, that the funnel history was drawn from;
`bad_rows.csv` lists the rows deliberately broken in data/ that a validating import must
quarantine (row numbers count the header as row 1), each with its outcome: "row quarantined",
or "row loaded without this value" where only an optional value is bad. Compare doorstep's
matches and measurements with these files to see how well it recovers the truth.
"""


def _conversion_truth(seed: int, today: date, lead_info: dict[str, Any]) -> dict[str, Any]:
    per_type = dict(zip(LEAD_TYPES, lead_info["per_type"].tolist(), strict=True))
    return {
        "seed": seed,
        "today": today.isoformat(),
        "source_types": {
            s: {"p_opportunity": P_OPPORTUNITY[s], "p_win": P_WIN[s],
                "share_of_leads": SOURCE_SHARES[s], "leads": per_type[s]}
            for s in SOURCE_SHARES
        },
        "mql_behavior_score": "an MQL's p_opportunity is proportional to 0.3 + behavior_score/100, "
                              "scaled so that the mean over MQLs is p_opportunity",
        "days_to_opportunity": {**DAYS_TO_OPPORTUNITY,
                                "distribution": "min + lognormal(median_after_min, sigma), "
                                                "capped at max; leads whose opportunity would "
                                                "fall after today are still open"},
        "days_to_close": {**DAYS_TO_CLOSE, "distribution": "as days_to_opportunity; "
                          "opportunities closing after today are open"},
        "opportunities_without_lead": {"per_lead_opportunity": NO_LEAD_OPPORTUNITY_SHARE,
                                       "p_win": P_WIN_NO_LEAD},
        "opportunities_with_lead_id": OPPORTUNITY_LINKS_LEAD,
    }


def _reps(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Our sales reps, spread over territories in proportion to where accounts are."""
    weight = dict.fromkeys(TERRITORIES, 0.0)
    for c in _COUNTRIES:
        if c[5] == "NA":
            weight["NA-East"] += c[4] * 0.55
            weight["NA-West"] += c[4] * 0.45
        else:
            weight[c[5]] += c[4]
    w = np.array([weight[t] for t in TERRITORIES])
    alloc = np.ones(len(TERRITORIES), np.int64)
    extra = (n - len(TERRITORIES)) * w / w.sum()
    alloc += np.floor(extra).astype(np.int64)
    left = n - alloc.sum()
    alloc[np.argsort(-(extra - np.floor(extra)), kind="stable")[:left]] += 1
    territory = np.repeat(np.arange(len(TERRITORIES)), alloc)
    active = rng.random(n) < 0.9
    first = np.concatenate([[0], np.cumsum(alloc)[:-1]])
    active[first] = True  # every territory keeps someone to route to
    names, emails = _people(rng, n, "example.com")
    ids = _ids("R", n, width=max(4, len(str(n))))
    capacity = rng.integers(3, 13, n) * 5
    table = _Table("reps", {
        "rep_id": ids, "name": pa.array(names, pa.string()), "email": pa.array(emails, pa.string()),
        "territory": _take(TERRITORIES, territory), "capacity": _ints(capacity),
        "active": _bools(active),
    }, [])
    return {"table": table, "territory": territory, "active": active, "ids": ids, "n": n,
            "emails": emails}


def _owners(rng: np.random.Generator, reps: dict[str, Any], territory: Ints) -> Ints:
    """A rep of each row's territory: mostly an active one, sometimes one who has left."""
    owner = np.empty(len(territory), np.int64)
    any_rep = rng.random(len(territory)) < 0.08
    for t in range(len(TERRITORIES)):
        members = np.flatnonzero(reps["territory"] == t)
        live = members[reps["active"][members]]
        rows = np.flatnonzero(territory == t)
        pool_rows = any_rep[rows]
        owner[rows] = np.where(pool_rows, members[rng.integers(0, len(members), len(rows))],
                               live[rng.integers(0, len(live), len(rows))])
    return owner


def _territory(rng: np.random.Generator, country: Ints) -> Ints:
    east = rng.random(len(country)) < 0.55
    region = np.array([TERRITORIES.index(c[5]) if c[5] != "NA" else -1 for c in _COUNTRIES])
    t = region[country]
    return np.where(t >= 0, t, np.where(east, 0, 1))


def _accounts(rng: np.random.Generator, co: _Companies, ours: Ints, n_dup: int,
              reps: dict[str, Any]) -> dict[str, Any]:
    """Our CRM accounts: every company of ours once, and n_dup of them a second time."""
    dup_of = rng.choice(ours, size=n_dup, replace=False)
    entity = np.concatenate([ours, dup_of])
    is_dup = np.concatenate([np.zeros(len(ours), bool), np.ones(n_dup, bool)])
    order = rng.permutation(len(entity))
    entity, is_dup = entity[order], is_dup[order]
    n = len(entity)
    ent = pa.array(entity)
    dup_rows = np.flatnonzero(is_dup)

    country = co.country[entity].copy()
    moved = rng.random(n_dup) < 0.6
    country[dup_rows[moved]] = (country[dup_rows[moved]] + rng.integers(1, 8, moved.sum())) % len(
        _COUNTRIES)
    base = co.name.take(ent)
    with_suffix = rng.random(n) < 0.45
    name = pc.if_else(pa.array(with_suffix), _join(base, _take(SUFFIXES, co.suffix[entity])), base)
    # a regional entry: "Northwind Analytics (EMEA)", "... GmbH", "... - Germany"
    region = [_REGION_LABEL.get(c[5], c[1]) for c in _COUNTRIES]
    first_suffix = np.array([int(s[0]) for s in _COUNTRY_SUFFIXES])
    dup_base = base.take(pa.array(dup_rows))
    dup_country = country[dup_rows]
    dup_name = _assemble(_pick(rng, n_dup, [0.4, 0.35, 0.25]), [
        lambda i: _cat(dup_base.take(pa.array(i)), pa.scalar(" ("),
                       _take(region, dup_country[i]), pa.scalar(")")),
        lambda i: _join(dup_base.take(pa.array(i)), _take(SUFFIXES, first_suffix[dup_country[i]])),
        lambda i: _join(dup_base.take(pa.array(i)), _take(C_NAME, dup_country[i]), sep=" - "),
    ])
    name = _replace(name, dup_rows, dup_name)

    domain = co.domain.take(ent)
    dup_label = co.label.take(pa.array(entity[dup_rows]))
    cc_domain = _join(dup_label, _take(C_TLD, dup_country), sep=".")
    dup_domain = _assemble(_pick(rng, n_dup, [0.5, 0.35, 0.15]), [
        lambda i: domain.take(pa.array(dup_rows[i])),
        lambda i: cc_domain.take(pa.array(i)),
        lambda i: _nulls(len(i)),
    ])
    domain = _replace(domain, dup_rows, dup_domain)
    website = _our_websites(rng, domain)

    territory = _territory(rng, country)
    owner = _owners(rng, reps, territory)
    employees = co.employees[entity].copy()
    employees[dup_rows] = np.maximum(5, (employees[dup_rows] * rng.uniform(0.05, 0.5, n_dup)))
    revenue = co.revenue[entity]
    customer = rng.random(n) < 0.08
    ids = _ids("A", n)
    table = _Table("accounts", {
        "account_id": ids, "name": name, "website": website,
        "country": _take(C_CODE, np.where(rng.random(n) < 0.01, -1, country)),
        "industry": _take(INDUSTRIES, np.where(rng.random(n) < 0.02, -1, co.industry[entity])),
        "employees": _ints(employees, rng.random(n) < 0.03),
        "annual_revenue": _ints(revenue, rng.random(n) < 0.12),
        "owner_id": reps["ids"].take(pa.array(owner)),
        "territory": _take(TERRITORIES, territory),
        "is_customer": _bools(customer),
    }, [])
    # the account rows of each company: its first row, and its duplicate row if any
    first_row = np.full(len(co.country), -1, np.int64)
    second_row = np.full(len(co.country), -1, np.int64)
    primary = np.flatnonzero(~is_dup)
    first_row[entity[primary]] = primary
    second_row[entity[dup_rows]] = dup_rows
    return {"table": table, "entity": entity, "ids": ids, "owner": owner, "customer": customer,
            "employees": employees, "name": name, "domain": domain, "base": base,
            "first_row": first_row, "second_row": second_row, "dup_of": dup_of}


def _partners(rng: np.random.Generator, n: int, reps: dict[str, Any]) -> _Table:
    """Our partners, each managed by one of our active reps."""
    names, codes, domains = [], [], []
    for k in range(n):
        if k < len(_PARTNERS):
            name, code, domain = _PARTNERS[k]
        else:
            name, code, domain = f"Partner {k + 1}", f"P{k + 1:02d}", f"partner{k + 1}.com"
        names.append(name)
        codes.append(code)
        domains.append(domain)
    live = np.flatnonzero(reps["active"])
    managers = rng.choice(live, size=n, replace=n > len(live))
    contact = [f"alliances@{d}" for d in domains]
    table = _Table("partners", {
        "partner_id": _ids("P", n, width=2),
        "name": pa.array(names, pa.string()),
        "partner_manager_id": reps["ids"].take(pa.array(managers)),
        "contact_email": pa.array(contact, pa.string()),
    }, [])
    table.columns["_code"] = pa.array(codes, pa.string())
    table.columns["_domain"] = pa.array(domains, pa.string())
    return table


def _partner_records(rng: np.random.Generator, acc: dict[str, Any],
                     n_overlap: Ints, n_other: Ints, pool: Ints, lookalikes: Ints,
                     partners: int) -> dict[str, Any]:
    """Which company each partner account is, and whether it is one of ours."""
    ours_all = np.flatnonzero(acc["first_row"] >= 0)
    dup_of = acc["dup_of"]
    partner, entity, overlap = [], [], []
    for p in range(partners):
        # every company we hold twice, and every look-alike, shows up at some partner
        forced = dup_of[np.arange(len(dup_of)) % partners == p][: n_overlap[p]]
        rest = np.setdiff1d(ours_all, forced, assume_unique=True)
        chosen = np.concatenate([forced, rng.choice(rest, n_overlap[p] - len(forced),
                                                    replace=False)])
        forced_other = lookalikes[np.arange(len(lookalikes)) % partners == p][: n_other[p]]
        rest_other = np.setdiff1d(pool, forced_other, assume_unique=True)
        extra = rng.choice(rest_other, n_other[p] - len(forced_other), replace=False)
        others = np.concatenate([forced_other, extra])
        ent = np.concatenate([chosen, others])
        is_ours = np.concatenate([np.ones(len(chosen), bool), np.zeros(len(others), bool)])
        order = rng.permutation(len(ent))
        partner.append(np.full(len(ent), p, np.int64))
        entity.append(ent[order])
        overlap.append(is_ours[order])
    return {"partner": np.concatenate(partner), "entity": np.concatenate(entity),
            "overlap": np.concatenate(overlap)}


def _partner_facts(rng: np.random.Generator, records: dict[str, Any], partners: _Table,
                   now: int) -> None:
    """Ids, relationship, strength, owner and activity of every partner account, into records."""
    part = records["partner"]
    n = len(part)
    sizes = np.bincount(part, minlength=partners.rows)
    seq = np.arange(n) - np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + 1
    width = max(6, len(str(int(sizes.max()))))
    records["ids"] = _join(partners.columns["_code"].take(pa.array(part)),
                           pc.utf8_lpad(pa.array(seq).cast(pa.string()), width=width,
                                        padding="0"), sep="-")
    records["pids"] = partners.columns["partner_id"].take(pa.array(part))
    relationship = _pick(rng, n, [0.35, 0.25, 0.40])  # customer, opportunity, prospect
    strength = np.clip(np.round(rng.normal(np.array([3.8, 3.0, 2.0])[relationship], 1.0)), 1, 5)
    strength = np.where(rng.random(n) < 0.12, -1, strength).astype(np.int64)
    records["relationship"] = relationship
    records["strength"] = strength
    records["engaged"] = rng.poisson(0.5 + 1.2 * (np.where(strength < 0, 2, strength) - 1))
    age = rng.exponential(np.array([40.0, 50.0, 120.0])[relationship])
    age = np.where(rng.random(n) < 0.12, rng.uniform(181, 720, n), np.minimum(age, 900))
    activity = now - (age * DAY).astype(np.int64) - rng.integers(0, DAY, n)
    since = now - rng.integers(30, 3650, n) * DAY
    # nobody became a customer without activity that day
    records["activity"] = np.where(relationship == 0, np.maximum(activity, since), activity)
    records["since"] = since
    owners = []
    for p in range(partners.rows):
        _, emails = _people(rng, max(4, int(sizes[p]) // 500),
                            partners.columns["_domain"][p].as_py())
        owners.append(pa.array(emails, pa.string()))
    offset = np.concatenate([[0], np.cumsum([len(o) for o in owners])[:-1]])
    pick = offset[part] + (rng.random(n) * np.array([len(o) for o in owners])[part]).astype(
        np.int64)
    records["owner_email"] = _take(pa.concat_arrays(owners),
                                   np.where(rng.random(n) < 0.1, -1, pick))


def _partner_account_tables(rng: np.random.Generator, vocab: _Vocab, co: _Companies,
                            records: dict[str, Any]) -> Iterator[_Table]:
    """Each partner's CRM export of its accounts, messy as such exports are, one partner a time."""
    part = records["partner"]
    for p in range(int(part.max()) + 1):
        rows = np.flatnonzero(part == p)
        at = pa.array(rows)
        ent = records["entity"][rows]
        n = len(rows)
        relationship, strength = records["relationship"][rows], records["strength"][rows]
        yield _Table("partner_accounts", {
            "partner_id": records["pids"].take(at),
            "partner_account_id": records["ids"].take(at),
            "name": _partner_names(rng, vocab, co, ent),
            "relationship": _take(("customer", "opportunity", "prospect"), relationship),
            "website": _partner_websites(rng, co, ent),
            "country": _country_texts(rng, co.country[ent]),
            "partner_owner_email": records["owner_email"].take(at),
            "last_activity_at": _times(records["activity"][rows], rng.random(n) < 0.04),
            "relationship_strength": _ints(strength, strength < 0),
            "contacts_engaged": _ints(records["engaged"][rows], rng.random(n) < 0.05),
            "customer_since": _dates(records["since"][rows], relationship != 0),
        }, [])


def _truth_pairs(acc: dict[str, Any], records: dict[str, Any]) -> dict[str, Any]:
    """Every (our account, partner account) pair that is the same company, sorted."""
    rec = np.flatnonzero(records["overlap"])
    ent = records["entity"][rec]
    second = acc["second_row"][ent]
    twice = second >= 0
    rows = np.concatenate([acc["first_row"][ent], second[twice]])
    rec = np.concatenate([rec, rec[twice]])
    table = pa.table({
        "account_id": acc["ids"].take(pa.array(rows)),
        "partner_id": records["pids"].take(pa.array(rec)),
        "partner_account_id": records["ids"].take(pa.array(rec)),
        "row": pa.array(rows),
    }).sort_by([("partner_id", "ascending"), ("partner_account_id", "ascending"),
                ("account_id", "ascending")])
    return {name: table[name].combine_chunks() for name in table.column_names}


LEAD_TYPES = tuple(SOURCE_SHARES)


def _leads(rng: np.random.Generator, acc: dict[str, Any], reps: dict[str, Any],
           pairs: dict[str, Any], now: int) -> tuple[_Table, dict[str, Any]]:
    """Historical leads of every source type, and what truly became of them."""
    n_acc = len(acc["entity"])
    n = max(20, round(LEADS_PER_ACCOUNT * n_acc))
    kind = _pick(rng, n, list(SOURCE_SHARES.values()))
    created = np.sort(now - rng.integers(3600, HISTORY_DAYS * DAY, n))
    weight = np.where(acc["customer"], 0.4, 1.0)
    account = rng.choice(n_acc, size=n, p=weight / weight.sum())
    eql = np.flatnonzero(kind == LEAD_TYPES.index("eql"))
    shared = np.unique(np.asarray(pairs["row"]))  # partner-sourced leads come from shared accounts
    account[eql] = rng.choice(shared if len(shared) else np.arange(n_acc), size=len(eql))
    mql = kind == LEAD_TYPES.index("mql")
    no_account = mql & (rng.random(n) < MQL_WITHOUT_ACCOUNT)
    score = np.round(100 * rng.beta(2, 3, n)).astype(np.int64)

    owner_kind = _pick(rng, n, [0.85, 0.10, 0.05])
    live = np.flatnonzero(reps["active"])
    owner = np.where(owner_kind == 0, acc["owner"][account], live[rng.integers(0, len(live), n)])
    owner = np.where((owner_kind == 2) | (no_account & (rng.random(n) < 0.4)), -1, owner)

    acc_rows = pa.array(account)
    company = pc.if_else(pa.array(no_account), acc["base"].take(acc_rows),
                         acc["name"].take(acc_rows))
    company = pc.if_else(pa.array(no_account | (rng.random(n) < 0.6)), company, pa.scalar(None,
                                                                                      pa.string()))
    website_kept = np.where(no_account, rng.random(n) < 0.75, rng.random(n) < 0.4)
    website = pc.if_else(pa.array(website_kept), acc["domain"].take(acc_rows),
                         pa.scalar(None, pa.string()))

    p = np.array([P_OPPORTUNITY[t] for t in LEAD_TYPES])[kind]
    lift = 0.3 + score / 100
    p = np.where(mql, p * lift / lift[mql].mean() if mql.any() else p, p)
    converts = rng.random(n) < p
    opp_at = created + _lognormal_days(rng, n, DAYS_TO_OPPORTUNITY)
    opened = converts & (opp_at < now)
    ids = _ids("L", n)
    table = _Table("leads", {
        "lead_id": ids,
        "source_type": _take(LEAD_TYPES, kind),
        "created_at": _times(created),
        "account_id": _take(acc["ids"], np.where(no_account, -1, account)),
        "company": company,
        "website": website,
        "behavior_score": _ints(score, ~mql),
        "owner_id": _take(reps["ids"], owner),
    }, [])
    info = {"kind": kind, "account": account, "opened": opened, "opp_at": opp_at, "ids": ids,
            "per_type": np.bincount(kind, minlength=len(LEAD_TYPES))}
    return table, info


def _opportunities(rng: np.random.Generator, acc: dict[str, Any], lead_info: dict[str, Any],
                   now: int) -> _Table:
    """Opportunities born from leads (some without their lead_id) and from elsewhere."""
    from_lead = np.flatnonzero(lead_info["opened"])
    k = len(from_lead)
    m = round(NO_LEAD_OPPORTUNITY_SHARE * k)
    n_acc = len(acc["entity"])
    weight = np.where(acc["customer"], 3.0, 1.0)
    account = np.concatenate([lead_info["account"][from_lead],
                              rng.choice(n_acc, size=m, p=weight / weight.sum())])
    created = np.concatenate([lead_info["opp_at"][from_lead],
                              now - rng.integers(DAY, HISTORY_DAYS * DAY, m)])
    p_win = np.concatenate([np.array([P_WIN[t] for t in LEAD_TYPES])[lead_info["kind"][from_lead]],
                            np.full(m, P_WIN_NO_LEAD)])
    lead = np.concatenate([np.where(rng.random(k) < OPPORTUNITY_LINKS_LEAD, from_lead, -1),
                           np.full(m, -1, np.int64)])
    order = np.argsort(created, kind="stable")
    account, created, p_win, lead = account[order], created[order], p_win[order], lead[order]
    n = k + m
    duration = _lognormal_days(rng, n, DAYS_TO_CLOSE)
    closed = created + duration < now
    won = rng.random(n) < p_win
    progress = np.clip((now - created) / duration, 0, 0.999)
    stage_idx = np.where(closed, np.where(won, 4, 5), (progress * 4).astype(np.int64))
    size = np.maximum(acc["employees"][account], 5) / 200
    amount = 25_000 * size ** 0.4 * rng.lognormal(0, 0.5, n)
    amount = np.maximum(1000, np.round(amount / 100) * 100).astype(np.int64)
    return _Table("opportunities", {
        "opportunity_id": _ids("O", n),
        "account_id": acc["ids"].take(pa.array(account)),
        "created_at": _times(created),
        "stage": _take((*_OPEN_STAGES, "Closed Won", "Closed Lost"), stage_idx),
        "amount": _ints(amount),
        "closed_at": _times(created + duration, ~closed),
        "is_won": _bools(won, ~closed),
        "lead_id": _take(lead_info["ids"], lead),
    }, [])


def _warmth(rng: np.random.Generator, records: dict[str, Any], now: int) -> _Table:
    """Partners' answers about ~30% of the shared accounts, warmer for closer relationships."""
    asked = np.flatnonzero(records["overlap"] & (rng.random(len(records["overlap"])) < 0.3))
    n = len(asked)
    strength = records["strength"][asked]
    level = (2 - records["relationship"][asked]) + np.where(strength < 0, 3, strength)  # 1..7
    p_strong = 0.08 + 0.11 * (level - 1)
    p_none = np.maximum(0.05, 0.55 - 0.08 * (level - 1))
    u = rng.random(n)
    answer = np.where(u < p_strong, 0, np.where(u < 1 - p_none, 1, 2))
    note_pick = rng.integers(0, 5, n)
    notes = [note for kind in ANSWER_ORDER for note in _NOTES[kind]]
    owner = records["owner_email"].take(pa.array(asked))
    return _Table("warmth_answers", {
        "partner_id": records["pids"].take(pa.array(asked)),
        "partner_account_id": records["ids"].take(pa.array(asked)),
        "answer": _take(ANSWER_ORDER, answer),
        "answered_at": _times(now - rng.integers(600, 60 * DAY, n)),
        "note": _take(notes, answer * 5 + note_pick),
        "answered_by": pc.fill_null(owner, "alliances desk"),
    }, [])


ANSWER_ORDER = ("strong", "some", "none")


def _add_bad_rows(rng: np.random.Generator, table: _Table, refs: dict[str, str],
                  now: int) -> None:
    """Deliberately broken rows a validating import must quarantine; nothing refers to them.

    `refs` carries valid ids from tables emitted earlier (a rep, an account, a partner).
    """
    cols, n, name = table.columns, table.rows, table.name
    stamp = str(np.datetime64(now - 30 * DAY, "s").astype("datetime64[D]")) + "T10:15:00"

    def next_id(key: str, prefix: str, k: int = 1) -> str:
        width = len(cols[key][0].as_py()) - len(prefix)
        return f"{prefix}{n + k:0{width}d}"

    if name == "reps":
        refs["rep"] = cols["rep_id"][0].as_py()
        refs["unknown_rep"] = "R" + "0" * (len(refs["rep"]) - 1)  # ids count from 1
        table.bad.append(({"rep_id": next_id("rep_id", "R"), "name": "Marta Quill",
                           "email": "marta.quill(at)example.com", "territory": "EMEA-North",
                           "capacity": "40", "active": "true"},
                          "email", "malformed email address", None))
    elif name == "partners":
        refs["partner"] = cols["partner_id"][0].as_py()
        refs["code"] = cols["_code"][0].as_py()
    elif name == "accounts":
        refs["account"] = cols["account_id"][int(rng.integers(0, n))].as_py()
        refs["unknown_account"] = "A" + "0" * (len(refs["account"]) - 1)
        table.bad.append(({"account_id": next_id("account_id", "A"),
                           "name": "Vellichor Books Inc", "website": "www.vellichorbooks.com",
                           "country": "US", "industry": "retail", "employees": "85",
                           "annual_revenue": "9000000", "owner_id": refs["unknown_rep"],
                           "territory": "NA-East", "is_customer": "false"},
                          "owner_id", "owner_id is not a rep", None))
        table.bad.append(({"account_id": next_id("account_id", "A", 2),
                           "name": "Petrichor Ceramics Ltd", "website": "petrichorceramics.co.uk",
                           "country": "GB", "industry": "manufacturing", "employees": "about 200",
                           "owner_id": refs["rep"], "territory": "EMEA-North",
                           "is_customer": "false"},
                          "employees", "employees is not a whole number", None))
    elif name == "partner_accounts":
        partner, code = refs["partner"], refs["code"]
        table.bad.append(({"partner_id": partner, "partner_account_id": f"{code}-X000001",
                           "name": "Sonder Textiles", "relationship": "friend",
                           "website": "sondertextiles.com", "country": "US",
                           "relationship_strength": "3", "contacts_engaged": "1"},
                          "relationship",
                          "relationship 'friend' is not customer/opportunity/prospect", None))
        table.bad.append(({"partner_id": partner, "partner_account_id": f"{code}-X000002",
                           "name": "Hiraeth Brewing Co", "relationship": "customer",
                           "website": "https://hiraethbrewing.ie", "country": "Ireland",
                           "last_activity_at": stamp, "relationship_strength": "7",
                           "contacts_engaged": "4", "customer_since": "2021-03-01"},
                          "relationship_strength", "relationship_strength 7 is above 5", None))
    elif name == "leads":
        table.bad.append(({"lead_id": next_id("lead_id", "L"), "source_type": "mql",
                           "created_at": "yesterday", "account_id": refs["account"],
                           "behavior_score": "55", "owner_id": refs["rep"]},
                          "created_at", "created_at 'yesterday' is not a date", None))
        table.bad.append(({"lead_id": next_id("lead_id", "L", 2), "source_type": "event",
                           "created_at": stamp, "account_id": refs["unknown_account"],
                           "owner_id": refs["rep"]},
                          "account_id", "account_id is not an account", None))
    elif name == "opportunities" and n:
        at = int(rng.integers(0, n))
        row = {c: cols[c][at].as_py() for c in cols}
        row.update({"stage": "Discovery", "amount": "15000", "closed_at": None, "is_won": None})
        table.bad.append((row, "opportunity_id",
                          f"duplicate opportunity_id {row['opportunity_id']}", at))
        table.bad.append(({"opportunity_id": next_id("opportunity_id", "O"),
                           "account_id": refs["account"], "created_at": stamp,
                           "stage": "Proposal", "amount": "12k"},
                          "amount", "amount '12k' is not a number", None))
    elif name == "warmth_answers":
        table.bad.append(({"partner_id": refs["partner"],
                           "partner_account_id": f"{refs['code']}-X999999", "answer": "some",
                           "answered_at": stamp, "note": "Met them once",
                           "answered_by": "alliances desk"},
                          "partner_id/partner_account_id", "no such partner account", None))


def _outcome(file: str, column: str) -> str:
    """What a validating import does with a bad row: a bad optional value is left out of a row
    that loads; any other problem quarantines the row."""
    from doorstep.ingest.validate import cell_level

    table = TABLE_BY_NAME[Path(file).stem]
    if column in table.column_names and cell_level(table, table.column(column)):
        return CELL_OUTCOME
    return "row quarantined"


def _mix_bad_rows(rng: np.random.Generator,
                  table: _Table) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    """The table's contract columns with its bad rows inserted; and where each bad row landed."""
    names = TABLE_BY_NAME[table.name].column_names
    n = table.rows
    if not table.bad:
        return {c: table.columns[c] for c in names}, []
    k = len(table.bad)
    where = np.array([rng.integers(1 if n else 0, n + 1) if after is None
                      else rng.integers(after + 1, n + 1) for _, _, _, after in table.bad])
    bad_order = np.argsort(where, kind="stable")
    order = np.insert(np.arange(n), where[bad_order], n + bad_order)
    columns = {}
    for c in names:
        values = [None if row.get(c) is None else str(row[c]) for row, _, _, _ in table.bad]
        both = pa.concat_arrays([_flat(table.columns[c]).cast(pa.string()),
                                 pa.array(values, pa.string())])
        columns[c] = both.take(pa.array(order))
    position = np.empty(k, np.int64)
    position[order[order >= n] - n] = np.flatnonzero(order >= n)
    landed = [(int(position[j]) + 2, col, reason)
              for j, (_, col, reason, _) in enumerate(table.bad)]
    return columns, landed


_CHUNK = 250_000


def _csv_text(column: Any) -> Any:
    """CSV fields: missing as empty, quoted only when they must be."""
    text = pc.fill_null(_flat(column).cast(pa.string()), "")
    needs = pc.match_substring_regex(text, '[,"\r\n]')
    if pc.any(needs).as_py():
        quoted = _cat(pa.scalar('"'), pc.replace_substring(text, '"', '""'), pa.scalar('"'))
        text = pc.if_else(needs, quoted, text)
    return text


def _write_csv(path: Path, names: list[str], columns: list[Any], append: bool = False) -> None:
    """Write string columns as a UTF-8 CSV file with a header row, or append them to one."""
    n = len(columns[0]) if columns else 0
    with path.open("ab" if append else "wb") as f:
        if not append:
            f.write((",".join(names) + "\n").encode())
        for start in range(0, n, _CHUNK):
            parts = [_csv_text(c.slice(start, _CHUNK)) for c in columns]
            lines = _cat(pc.binary_join_element_wise(*parts, ","), pa.scalar("\n"))
            offsets = np.frombuffer(lines.buffers()[1], np.int32)
            lo, hi = offsets[lines.offset], offsets[lines.offset + len(lines)]
            f.write(memoryview(lines.buffers()[2])[lo:hi])
