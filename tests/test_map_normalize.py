"""Tests of the account-mapping normalisers: websites, company names, countries."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pycountry
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from doorstep.map import normalize
from doorstep.map.normalize import (
    REASON_DIRECTORY,
    REASON_FREE_MAIL,
    REASON_INVALID,
    REASON_LINK_SHORTENER,
    REASON_SITE_BUILDER,
    REASON_SOCIAL,
    identifying_domain,
    is_name_usable,
    is_non_identifying,
    name_forms,
    name_key_loose,
    name_tokens,
    normalise_country,
    normalise_distinct,
    normalise_name,
    registrable_domain,
    website_hint,
    website_host,
)

# --------------------------------------------------------------------------- websites


@pytest.mark.parametrize(
    "website",
    ["acme.com", "www.acme.com", "http://acme.com", "https://www.acme.com", "HTTPS://WWW.ACME.COM"],
)
def test_www_and_scheme_do_not_change_the_domain(website: str) -> None:
    assert registrable_domain(website) == "acme.com"
    assert website_host(website) == "acme.com"


@pytest.mark.parametrize(
    "website",
    [
        "acme.com/about",
        "acme.com/about?utm_source=x&ref=y",
        "acme.com#contact",
        "acme.com:8443",
        "https://acme.com:443/a/b?c=d#e",
        "acme.com?x",
        "acme.com\\about",
    ],
)
def test_paths_queries_fragments_and_ports_are_ignored(website: str) -> None:
    assert registrable_domain(website) == "acme.com"


def test_userinfo_is_ignored() -> None:
    assert registrable_domain("https://user:secret@www.acme.com/x") == "acme.com"


@pytest.mark.parametrize(
    "website", ["  Acme.COM  ", "acme.com.", "\tACME.com.\n", "\ufeffacme.com"]
)
def test_case_whitespace_and_trailing_dot_are_ignored(website: str) -> None:
    assert registrable_domain(website) == "acme.com"


def test_subdomains_reduce_to_the_registrable_domain() -> None:
    assert registrable_domain("https://shop.eu.acme.com/cart") == "acme.com"
    assert website_host("https://shop.eu.acme.com/cart") == "shop.eu.acme.com"


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("www.acme.co.uk", "acme.co.uk"),
        ("shop.acme.co.uk", "acme.co.uk"),
        ("acme.com.au", "acme.com.au"),
        ("acme.co.jp", "acme.co.jp"),
        ("acme.com.br/loja", "acme.com.br"),
    ],
)
def test_country_second_level_domains_are_kept_whole(website: str, domain: str) -> None:
    assert registrable_domain(website) == domain


@pytest.mark.parametrize(
    "website", ["info@acme.com", "mailto:Info@Acme.com", "John Smith <john@sales.acme.com>"]
)
def test_email_addresses_give_their_domain(website: str) -> None:
    assert registrable_domain(website) == "acme.com"


@pytest.mark.parametrize(
    ("website", "host"),
    [
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("http://www.Bücher.de/shop", "xn--bcher-kva.de"),
        ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("acme\u3002com", "acme.com"),
        ("ＡＣＭＥ.ＣＯＭ", "acme.com"),
    ],
)
def test_unicode_hosts_become_punycode(website: str, host: str) -> None:
    assert website_host(website) == host
    assert registrable_domain(website) == host


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("acme.myshopify.com", "acme.myshopify.com"),
        ("https://foo.github.io/project", "foo.github.io"),
        ("x.wixsite.com/acme", "x.wixsite.com"),
        ("acme.blogspot.com", "acme.blogspot.com"),
    ],
)
def test_private_psl_suffixes_keep_the_tenant(website: str, domain: str) -> None:
    assert registrable_domain(website) == domain


def test_builder_hosts_outside_the_psl_keep_the_tenant_too() -> None:
    assert registrable_domain("acme.wordpress.com") == "acme.wordpress.com"
    assert registrable_domain("sites.google.com/view/acme") == "sites.google.com"
    assert registrable_domain("wordpress.com") == "wordpress.com"


def test_website_host_drops_www_but_keeps_other_subdomains() -> None:
    assert website_host("www.shop.acme.com") == "shop.acme.com"
    assert website_host("www2.acme.com") == "acme.com"
    assert website_host("www.com") == "www.com"


def test_www_is_kept_when_it_is_the_domain_label() -> None:
    assert registrable_domain("www.co.uk") == "www.co.uk"
    assert registrable_domain("ww0.co.uk") == "ww0.co.uk"


def test_www_above_a_private_suffix_is_the_platforms_site_not_a_tenant() -> None:
    assert registrable_domain("www.blogspot.com") == "blogspot.com"
    assert registrable_domain("www.acme.myshopify.com") == "acme.myshopify.com"


@pytest.mark.parametrize(
    "website",
    [
        "",
        "   ",
        "n/a",
        "-",
        "none",
        "acme",
        "localhost",
        "1.2.3.4",
        "http://192.168.0.1:8080/admin",
        "http://[::1]/",
        "acme.notatld",
        "acme..com",
        "-acme.com",
        "co.uk",
        "com",
        "not a website",
    ],
)
def test_garbage_ips_and_unknown_suffixes_give_none(website: str) -> None:
    assert registrable_domain(website) is None
    assert website_host(website) is None
    assert identifying_domain(website) is None


def test_a_bare_private_suffix_is_the_platforms_own_domain() -> None:
    assert registrable_domain("myshopify.com") == "myshopify.com"
    assert registrable_domain("github.io") == "github.io"


@pytest.mark.parametrize(
    "website", ["http//acme.com", "https:acme.com", "//acme.com", "https:/acme.com"]
)
def test_sloppy_schemes_are_tolerated(website: str) -> None:
    assert registrable_domain(website) == "acme.com"


def test_the_first_of_several_websites_is_used() -> None:
    assert registrable_domain("acme.com, acme.de") == "acme.com"
    assert registrable_domain("Website: acme.de; acme.com") == "acme.de"


def test_non_strings_give_none() -> None:
    values: list[Any] = [None, 3, 2.5, float("nan"), b"acme.com"]
    for value in values:
        assert registrable_domain(value) is None
        assert website_host(value) is None
        assert is_non_identifying(value) is None
        assert identifying_domain(value) is None


# --------------------------------------------------------------------------- non-identifying


@pytest.mark.parametrize(
    "website",
    [
        "https://www.linkedin.com/company/acme/",
        "uk.linkedin.com/company/acme",
        "facebook.com/acme",
        "m.facebook.com/acme",
        "fb.com/acme",
        "x.com/acme",
        "twitter.com/acme",
        "instagram.com/acme",
        "crunchbase.com/organization/acme",
        "youtube.com/@acme",
        "tiktok.com/@acme",
        "xing.com/pages/acme",
        "github.com/acme",
        "medium.com/@acme",
        "angel.co/company/acme",
        "wellfound.com/company/acme",
    ],
)
def test_social_profiles_are_non_identifying(website: str) -> None:
    assert is_non_identifying(website) == REASON_SOCIAL
    assert identifying_domain(website) is None


@pytest.mark.parametrize(
    "website",
    [
        "sites.google.com/view/acme",
        "acme.wixsite.com/home",
        "wix.com",
        "acme.myshopify.com",
        "acme.squarespace.com",
        "acme.wordpress.com",
        "acme.blogspot.com",
        "acme.weebly.com",
        "acme.webflow.io",
        "foo.github.io",
        "acme.carrd.co",
        "acme.godaddysites.com",
        "acme.business.site",
        "acme.jimdosite.com",
    ],
)
def test_site_builders_and_hosted_shops_are_non_identifying(website: str) -> None:
    assert is_non_identifying(website) == REASON_SITE_BUILDER
    assert identifying_domain(website) is None


@pytest.mark.parametrize(
    "website",
    [
        "gmail.com",
        "bob@gmail.com",
        "yahoo.co.uk",
        "outlook.com",
        "hotmail.fr",
        "web.de",
        "wanadoo.fr",
    ],
)
def test_free_mail_domains_are_non_identifying(website: str) -> None:
    assert is_non_identifying(website) == REASON_FREE_MAIL


def test_free_mail_list_is_the_packages_thousands_plus_our_own() -> None:
    hosts = normalize._free_mail_hosts()
    assert len(hosts) > 4000
    assert {"gmail.com", "hey.com", "tuta.io"} <= hosts


@pytest.mark.parametrize(
    ("website", "reason"),
    [
        ("apps.apple.com/us/app/acme/id1", REASON_DIRECTORY),
        ("play.google.com/store/apps/details?id=com.acme", REASON_DIRECTORY),
        ("yelp.com/biz/acme", REASON_DIRECTORY),
        ("bit.ly/acme", REASON_LINK_SHORTENER),
        ("lnkd.in/abc", REASON_LINK_SHORTENER),
    ],
)
def test_directories_and_shorteners_are_non_identifying(website: str, reason: str) -> None:
    assert is_non_identifying(website) == reason


@pytest.mark.parametrize(
    ("website", "hint"),
    [
        ("linkedin.com/company/swancore-studios", "swancorestudios"),
        ("https://www.linkedin.com/company/quigley-goods/about/", "quigleygoods"),
        ("facebook.com/pages/Acme-Freight/12345", "acmefreight"),
        ("x.com/@AcmeHQ", "acmehq"),
        ("crunchbase.com/organization/acme-freight", "acmefreight"),
        ("acme.wixsite.com/shop", "acme"),
        ("acmetools.myshopify.com", "acmetools"),
        ("https://sites.google.com/view/acme-tools", "acmetools"),
        ("laurentalmeidametals.info@outlook.com", "laurentalmeidametals"),
        ("acme_freight+sales@gmail.com", "acme"),
        ("https://www.linkedin.com/in/jane-doe", None),  # a person, not a company
        ("linkedin.com", None),
        ("gmail.com", None),
        ("joe@gmail.com", None),  # too short to mean much
        ("www.acme.com", None),  # identifying: its domain is the evidence
        ("not a website", None),
        (None, None),
    ],
)
def test_a_non_identifying_website_still_spells_a_name(website: str | None, hint: str | None,
                                                      ) -> None:
    assert website_hint(website) == hint


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_website_hint_never_fails_and_is_a_plain_handle(website: str) -> None:
    hint = website_hint(website)
    assert hint is None or (hint.isalnum() and hint == hint.lower() and len(hint) >= 4)
    assert hint is None or identifying_domain(website) is None


@pytest.mark.parametrize(
    ("name", "usable"),
    [("Inc.", False), ("GmbH & Co. KG", False), ("", False), (None, False), ("Acme Inc", True),
     ("The Acme Company", True)],
)
def test_a_name_that_is_only_a_legal_form_is_not_usable(name: str | None, usable: bool) -> None:
    assert is_name_usable(name) is usable


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_name_forms_agree_with_the_name_key(name: str) -> None:
    key, every = name_forms(name)
    assert key == normalise_name(name)
    # the key is the name's words with legal form and "the" taken off the ends
    assert len(key.split()) <= len(every.split())
    assert bool(key) == bool(every)


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("acme.com", "acme.com"),
        ("www.google.com", "google.com"),
        ("apple.com", "apple.com"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("acme.herokuapp.com", None),
        ("comcast.com", "comcast.com"),
    ],
)
def test_company_domains_are_identifying(website: str, domain: str | None) -> None:
    assert identifying_domain(website) == domain


def test_a_subdomain_entry_does_not_flag_its_parent_domain() -> None:
    assert is_non_identifying("sites.google.com") == REASON_SITE_BUILDER
    assert is_non_identifying("google.com") is None
    assert is_non_identifying("apple.com") is None


def test_blank_website_has_no_reason_and_garbage_is_not_a_valid_domain() -> None:
    assert is_non_identifying(None) is None
    assert is_non_identifying("  ") is None
    assert is_non_identifying("n/a") == REASON_INVALID
    assert is_non_identifying("10.0.0.1") == REASON_INVALID


@pytest.mark.parametrize(
    "filename",
    [
        "social_profile_domains.txt",
        "site_builder_domains.txt",
        "directory_domains.txt",
        "link_shortener_domains.txt",
        "free_mail_domains.txt",
    ],
)
def test_every_listed_host_is_a_valid_host(filename: str) -> None:
    entries = normalize._data_lines(filename)
    assert entries
    assert len(entries) == len(set(entries))
    for entry in entries:
        assert website_host(entry) == entry, entry


# --------------------------------------------------------------------------- offline


def test_the_extractor_never_fetches_nor_writes_a_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise OSError(f"network disabled in this test: {name}")

        return refused

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    # tldextract would fetch this URL if it read its environment; it must not.
    monkeypatch.setenv("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "https://psl.invalid/list.dat")
    monkeypatch.setenv("TLDEXTRACT_CACHE", str(tmp_path / "tldextract"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(socket, "socket", refuse("socket"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))

    extractor = normalize._build_extractor()
    assert extractor("www.acme.co.uk").top_domain_under_public_suffix == "acme.co.uk"
    assert extractor("acme.myshopify.com").suffix == "myshopify.com"
    assert extractor("acme.wordpress.com").suffix == "wordpress.com"

    normalize._extractor.cache_clear()
    normalize._registrable.cache_clear()
    normalize._parse_website.cache_clear()
    assert registrable_domain("https://shop.acme.co.uk/x") == "acme.co.uk"
    assert registrable_domain("foo.github.io") == "foo.github.io"

    assert attempts == []
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("common", "legal"),
    [
        ("3M", "3M CO"),
        ("Alphabet Inc. (Class A)", "ALPHABET INC."),
        ("Procter & Gamble", "PROCTER & GAMBLE Co"),
        ("AT&T", "AT&T INC."),
        ("Coca-Cola Company (The)", "COCA COLA CO"),
        ("Amazon", "AMAZON COM INC"),
        ("Amazon.com", "Amazon.com, Inc."),
        ("Bank of America", "BANK OF AMERICA CORP /DE/"),
        ("U.S. Bancorp", "US BANCORP \\DE\\"),
        ("Eli Lilly and Company", "ELI LILLY & Co"),
        ("W. W. Grainger", "W.W. GRAINGER, INC."),
        ("Estée Lauder Companies (The)", "ESTEE LAUDER COMPANIES INC"),
        ("McDonald's", "MCDONALDS CORP"),
        ("Moody's Corporation", "MOODYS CORP /DE/"),
        ("Packaging Corporation of America", "PACKAGING CORP OF AMERICA"),
        ("Wells Fargo & Company", "WELLS FARGO & COMPANY/MN"),
        ("CRH plc", "CRH PUBLIC LTD CO"),
        ("News Corp (Class B)", "NEWS CORP"),
        ("Yum! Brands", "YUM BRANDS INC"),
        ("Brown–Forman", "BROWN FORMAN CORP"),
        ("Ametek", "AMETEK INC/"),
    ],
)
def test_common_names_meet_their_legal_titles(common: str, legal: str) -> None:
    assert normalise_name(common) == normalise_name(legal)


@pytest.mark.parametrize(
    "name",
    [
        "Acme Inc.",
        "Acme, Inc",
        "Acme Incorporated",
        "Acme Corp.",
        "Acme Corporation",
        "Acme Company",
        "Acme Co., Ltd.",
        "Acme Limited",
        "Acme LLC",
        "Acme L.L.C.",
        "Acme LLP",
        "Acme PLC",
        "Acme GmbH",
        "Acme GmbH & Co. KG",
        "Acme AG",
        "Acme Aktiengesellschaft",
        "Acme S.A.",
        "Acme SA de CV",
        "Acme S.p.A.",
        "Acme S.r.l.",
        "Acme SARL",
        "Acme SAS",
        "Acme B.V.",
        "Acme N.V.",
        "Acme A/S",
        "Acme AB",
        "Acme Oy",
        "Acme ASA",
        "Acme Sp. z o.o.",
        "Acme Pty Ltd",
        "Acme Pte. Ltd.",
        "Acme Pvt Ltd",
        "Acme Private Limited",
        "Acme Sdn Bhd",
        "Acme K.K.",
        "Acme Kabushiki Kaisha",
        "Acme Ltda.",
        "Acme Public Limited Company",
        "ACME OOO",
    ],
)
def test_legal_forms_in_many_languages_are_stripped(name: str) -> None:
    assert normalise_name(name) == "acme"


def test_accents_are_folded_to_ascii() -> None:
    assert normalise_name("Société Générale S.A.") == "societe generale"
    assert normalise_name("Ørsted A/S") == "orsted"
    assert normalise_name("Łódź Straße Æble") == "lodz strasse aeble"


def test_ampersand_and_plus_become_and() -> None:
    assert normalise_name("Johnson & Johnson") == "johnson and johnson"
    assert normalise_name("Johnson and Johnson") == "johnson and johnson"
    assert normalise_name("Marks+Spencer") == "marks and spencer"


def test_punctuation_becomes_space_and_whitespace_collapses() -> None:
    assert normalise_name("  Bio-Techne ,  Corp  ") == "bio techne"
    assert normalise_name("Yum!   Brands") == "yum brands"


def test_a_leading_or_parenthesised_the_is_dropped() -> None:
    assert normalise_name("The Home Depot") == "home depot"
    assert normalise_name("Home Depot (The)") == "home depot"
    assert normalise_name("Home Depot, The") == "home depot"


def test_share_class_noise_is_dropped() -> None:
    assert normalise_name("Fox Corporation (Class A)") == "fox"
    assert normalise_name("Acme Inc Class B Common Stock") == "acme"
    assert normalise_name("Acme Ordinary Shares") == "acme"


def test_sec_state_markers_are_dropped_but_real_slashes_are_kept() -> None:
    assert normalise_name("PROGRESSIVE CORP/OH/") == "progressive"
    assert normalise_name("KEYCORP /NEW/") == "keycorp"
    assert normalise_name("VERTEX PHARMACEUTICALS INC / MA") == "vertex pharmaceuticals"
    assert normalise_name("AC/DC") == "ac dc"


def test_dotted_initials_are_joined() -> None:
    assert normalise_name("A. O. Smith") == "ao smith"
    assert normalise_name("A.O. Smith") == "ao smith"
    assert normalise_name("AO Smith Corp") == "ao smith"


def test_holdings_and_group_stay_in_the_main_key_but_not_in_the_loose_key() -> None:
    assert normalise_name("Hilton Worldwide Holdings Inc.") == "hilton worldwide holdings"
    assert normalise_name("CBRE Group, Inc.") == "cbre group"
    assert name_key_loose("Hilton Worldwide Holdings Inc.") == name_key_loose("Hilton Worldwide")
    assert name_key_loose("CBRE Group, Inc.") == "cbre"
    assert name_key_loose("Group Holdings Ltd") == "group holdings"


def test_words_that_only_look_like_legal_forms_are_kept() -> None:
    assert normalise_name("Acme UK Ltd") == "acme uk"
    assert normalise_name("JPMorgan Private") == "jpmorgan private"
    assert normalise_name("Acme Ent") == "acme ent"


def test_a_name_made_only_of_legal_words_keeps_its_last_word() -> None:
    assert normalise_name("Inc. Co.") == "inc"
    assert normalise_name("The Company") == "company"
    assert normalise_name("The") == "the"


def test_non_latin_names_are_kept_not_erased() -> None:
    assert normalise_name("株式会社トヨタ") == "株式会社トヨタ"
    assert normalise_name("Газпром ООО") == "газпром"


def test_name_tokens_are_the_words_of_the_key() -> None:
    assert name_tokens("Procter & Gamble Co") == ["procter", "and", "gamble"]
    assert name_tokens(None) == []


def test_none_and_non_strings_give_an_empty_key() -> None:
    assert normalise_name(None) == ""
    assert normalise_name("") == ""
    not_a_string: Any = float("nan")
    assert normalise_name(not_a_string) == ""
    assert name_key_loose(None) == ""


# --------------------------------------------------------------------------- countries


@pytest.mark.parametrize(
    ("country", "code"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("  united states  ", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("GBR", "GB"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("deu", "DE"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("Czechia", "CZ"),
        ("Czech Republic", "CZ"),
        ("The Netherlands", "NL"),
        ("Holland", "NL"),
        ("Côte d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Russia", "RU"),
        ("Vietnam", "VN"),
        ("Taiwan", "TW"),
        ("Bosnia & Herzegovina", "BA"),
        ("St. Lucia", "LC"),
        ("UAE", "AE"),
        ("Kosovo", "XK"),
        ("840", "US"),
    ],
)
def test_country_codes_names_and_aliases_give_alpha_2(country: str, code: str) -> None:
    assert normalise_country(country) == code


@pytest.mark.parametrize("country", [None, "", "  ", "Atlantis", "XX", "Europe", "N/A", 49])
def test_unknown_country_is_none(country: Any) -> None:
    assert normalise_country(country) is None


def test_not_available_is_not_namibia() -> None:
    assert normalise_country("N/A") is None
    assert normalise_country("NA") is None
    assert normalise_country("Namibia") == "NA"
    assert normalise_country("NAM") == "NA"


def test_every_pycountry_code_and_name_is_recognised() -> None:
    for country in pycountry.countries:
        spellings = [country.alpha_3, country.name]
        if country.alpha_2 != "NA":
            spellings.append(country.alpha_2)
        for spelling in spellings:
            assert normalise_country(spelling) == country.alpha_2, spelling


# --------------------------------------------------------------------------- bulk


def test_normalise_distinct_calls_the_function_once_per_distinct_value() -> None:
    calls: list[str] = []

    def spy(value: str) -> str:
        calls.append(value)
        return normalise_name(value)

    result = normalise_distinct(["Acme Inc", None, "Acme Inc", "Beta Ltd", "Acme Inc"], spy)
    assert result == {"Acme Inc": "acme", "Beta Ltd": "beta"}
    assert calls == ["Acme Inc", "Beta Ltd"]


# --------------------------------------------------------------------------- properties

_NAME_PARTS = st.sampled_from(
    [
        "Acme", "the", "The", "&", "+", "and", "Inc.", "Co", "Corp", "Ltd", "S.A.", "A/S",
        "(The)", "(Class A)", "Class", "B", "a", "b", ".", "com", "Holdings", "Group",
        "/DE/", "INC/", "Société", "Straße", "Ølstykke", "株式会社", "-", "'s", "ß", "İ",
    ]
)  # fmt: skip
_NAMES = st.one_of(st.text(), st.lists(_NAME_PARTS | st.text(max_size=5)).map(" ".join))


@settings(deadline=None)
@given(_NAMES)
@example("0\u00d7\u0300")  # a combining mark with no letter before it
@example("Holdings The Acme Group")
def test_normalising_a_normalised_name_changes_nothing(name: str) -> None:
    once = normalise_name(name)
    assert normalise_name(once) == once


@settings(deadline=None)
@given(_NAMES)
def test_name_keys_are_trimmed_single_spaced_words(name: str) -> None:
    for key in (normalise_name(name), name_key_loose(name)):
        assert key == key.strip()
        assert "  " not in key
    assert normalise_name(name).split() == name_tokens(name)


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_SUFFIX = st.sampled_from(
    [
        "com",
        "co.uk",
        "de",
        "io",
        "com.au",
        "org",
        "fr",
        "myshopify.com",
        "github.io",
        "wordpress.com",
    ]
)
_DOMAINS = st.builds(lambda sub, label, suffix: ".".join([*sub, label, suffix]),
                     st.lists(_LABEL, max_size=2), _LABEL, _SUFFIX)  # fmt: skip


@settings(deadline=None)
@given(_DOMAINS)
@example("ww0.co.uk")  # looks like a "www" typo but is the domain itself
@example("x0.com")  # a bare PSL private suffix
def test_scheme_www_path_and_query_never_change_the_domain(domain: str) -> None:
    expected = registrable_domain(domain)
    assert expected is not None
    assert registrable_domain("https://www." + domain + "/path?q") == expected
    assert registrable_domain("  " + domain.upper() + ".  ") == expected
    assert registrable_domain("sales@" + domain) == expected


@settings(deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"[a-z:/@.\[\]%-]{0,30}", fullmatch=True)))
def test_website_functions_never_raise_on_arbitrary_text(website: str) -> None:
    for result in (website_host(website), registrable_domain(website), identifying_domain(website)):
        assert result is None or (result.isascii() and result == result.lower())
    assert is_non_identifying(website) is None or isinstance(is_non_identifying(website), str)


@settings(deadline=None)
@given(st.one_of(st.text(), st.sampled_from([c.name for c in pycountry.countries])))
def test_country_normaliser_returns_none_or_a_two_letter_uppercase_code(country: str) -> None:
    code = normalise_country(country)
    assert code is None or (len(code) == 2 and code.isascii() and code.isalpha() and code.isupper())
