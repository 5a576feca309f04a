"""The words of company names: abbreviations, stopwords, structural words, regions, legal forms.

General vocabulary of the name matcher, never per company, and the two questions asked of it
alone: does a tail of words name a region, and what is a regional record's company name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from doorstep.map.normalize import country_words, name_tokens, normalise_country

# Common business abbreviations, expanded before comparison: general, never per company.
ABBREVIATIONS: dict[str, str] = {
    "tech": "technology", "techs": "technologies", "svc": "service", "svcs": "services",
    "srvcs": "services", "mgmt": "management", "mgt": "management", "assoc": "associates",
    "assocs": "associates", "assn": "association", "labs": "laboratories", "lab": "laboratory",
    "hldg": "holding", "hldgs": "holdings", "grp": "group", "finl": "financial",
    "fncl": "financial", "sys": "systems", "comms": "communications", "pharma":
    "pharmaceuticals", "pharm": "pharmaceutical", "bk": "bank", "ctr": "center", "centre":
    "center", "univ": "university", "dev": "development", "devel": "development", "engr":
    "engineering", "eng": "engineering", "inds": "industries", "amer": "american",
    "ins": "insurance", "prods": "products", "chem": "chemical", "mtg": "mortgage",
    "utd": "united", "hlth": "health", "resh": "research", "rlty": "realty",
    "ppty": "property", "pptys": "properties", "tr": "trust", "sci": "sciences", "solns":
    "solutions", "equip": "equipment", "distr": "distribution", "invt": "investment", "invts":
    "investments", "intl": "international", "natl": "national", "mfg": "manufacturing",
    "corp": "corporation", "bros": "brothers", "co": "company", "cos": "companies",
}

# Words with no identifying content of their own.
STOPWORDS = frozenset({"and", "of", "the", "de", "du", "des", "la", "le", "et", "y", "for"})

# Words saying how a company is organised rather than which company it is. Industry words
# ("systems", "brands", "technologies") are deliberately absent: "Northwind Systems" and
# "Northwind Brands" are two companies.
STRUCTURAL = frozenset({
    "group", "holding", "holdings", "company", "companies", "corporation", "incorporated",
    "enterprise", "enterprises", "international", "global", "worldwide", "limited",
})

# Regional qualifiers a CRM appends to a company's name for a regional record ("Acme (EMEA)",
# "Acme - Germany"): words and phrases, and country names. Only when they trail the name,
# since at the front they are the name ("Pacific Gas", "America Movil").
REGIONS = frozenset({
    "emea", "apac", "latam", "americas", "europe", "asia", "nordics", "benelux", "dach", "uk",
    "usa", "eu", "north america", "south america", "latin america", "central america",
    "southern europe", "northern europe", "western europe", "eastern europe", "central europe",
    "middle east", "asia pacific", "africa", "division", "branch", "subsidiary", "office", "hq",
    "headquarters", "region",
})

ROMAN = {
    "ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "xi": "11",
    "xii": "12", "xiii": "13", "xiv": "14", "xv": "15", "xx": "20",
}
ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
DIGIT = re.compile(r"\d")

# Legal forms, by family: forms of one family are interchangeable spellings ("Inc"/"Corp" in
# the US, "Ltd"/"Limited"); a name can carry several ("GmbH & Co. KG", "Corp plc").
LEGAL_FAMILIES: dict[tuple[str, ...], str] = {
    ("inc",): "corp", ("incorporated",): "corp", ("corp",): "corp", ("corporation",): "corp",
    ("co",): "corp", ("company",): "corp",
    ("ltd",): "ltd", ("limited",): "ltd", ("pty", "ltd"): "ltd", ("pte", "ltd"): "ltd",
    ("pvt", "ltd"): "ltd", ("private", "limited"): "ltd", ("plc",): "plc",
    ("public", "limited", "company"): "plc", ("llc",): "llc", ("lp",): "lp", ("llp",): "llp",
    ("limited", "partnership"): "lp", ("gmbh",): "gmbh", ("ag",): "ag", ("kg",): "kg",
    ("co", "kg"): "kg",
    ("se",): "se", ("sa",): "sa", ("sas",): "sas", ("sarl",): "sarl", ("sl",): "sl",
    ("spa",): "spa", ("srl",): "srl", ("ltda",): "ltda", ("lda",): "lda",
    ("sa", "de", "cv"): "sadecv", ("nv",): "nv", ("bv",): "bv", ("ab",): "ab", ("as",): "as",
    ("asa",): "asa", ("oy",): "oy", ("oyj",): "oy", ("kk",): "kk", ("bhd",): "bhd",
    ("tbk",): "tbk",
}
LEGAL_NOISE = frozenset({"the", "new", "de", "del", "class", "a", "b", "c", "adr", "cl"})
RAW_WORD = re.compile(r"[a-z0-9]+")

def content(tokens: Sequence[str]) -> list[str]:
    """Return the words that carry identity (not stopwords)."""
    return [t for t in tokens if t not in STOPWORDS]


def first_identifying(tokens: Sequence[str]) -> int:
    """Return the position of the first identifying word."""
    for i, t in enumerate(tokens):
        if t not in STOPWORDS:
            return i
    return -1


@lru_cache(maxsize=1 << 14)
def is_region(tail: tuple[str, ...]) -> bool:
    """Return True when trailing words name a region or a country ("north america", "germany")."""
    words = [t for t in tail if t not in STRUCTURAL]
    phrase = " ".join(words)
    if not phrase or phrase in REGIONS or all(t in REGIONS for t in words):
        return bool(phrase)
    # most tails are no country's words at all: no need to look them up
    known = country_words()
    if not all(t in known for t in (words[1:] if words[0] == "the" else words)):
        return False
    return len(phrase) >= 4 and normalise_country(phrase) is not None


_REGIONAL_TAIL = re.compile(
    r"^(?P<head>.*\S)\s*(?:\((?P<paren>[^()]+)\)|\s[-\u2013\u2014]\s*(?P<dash>[^-\u2013\u2014()]+))\s*$"
)


def regional_core(name: str | None) -> str | None:
    """Return the normalised name of a regional record ("Acme (EMEA)", "Acme - Germany"), or None.

    A CRM often holds a company once per region, its name carrying the region in parentheses
    or after a dash; the name without it is the company's.
    """
    if not isinstance(name, str):
        return None
    m = _REGIONAL_TAIL.match(name.strip())
    if m is None:
        return None
    tail = tuple(name_tokens(m.group("paren") or m.group("dash") or ""))
    if not tail or not is_region(tail):
        return None
    core = " ".join(name_tokens(m.group("head")))
    return core or None

