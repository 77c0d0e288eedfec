"""Hypothesis fuzz of the URL path over Unicode and IDNA space: the connector form's
validation, the outbound guard, the client's constructor and its redirects. Every input ends
in an accepted URL or a clear refusal (a form error, BlockedAddress, a typed WordPressError),
never an unhandled exception; and what the form accepts, the guard accepts too.

The budget is fixed (FUZZ_EXAMPLES per property, 100 by default: a few seconds in the suite);
`FUZZ_EXAMPLES=20000` runs the long campaign whose figures docs/reliability.md quotes."""

import os
import re

import httpx
import respx
from django import forms
from django.test import override_settings
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from connectors.forms import normalise_site_url
from connectors.wordpress import contract
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import BlockedAddress, SiteUnreachable, WordPressError
from connectors.wordpress.guard import OutboundGuard, parse_url

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
KEY = "fuzz-sync-key-0123456789abcdef0123456789"
SITE = "https://wp.example.org"
PING = {
    "plugin": "association-app",
    "plugin_version": "1.0.0",
    "contract_version": 1,
    "site_name": "Fuzz",
    "entity_types": list(contract.ENTITY_TYPES),
    "max_per_page": 100,
}


def public_resolver(host, port):
    return ["93.184.216.34"]


# Pieces a host name is made of: ASCII, dots and their look-alikes, IDNA prefixes, full-width
# and circled forms, combining marks, joiners, bidi controls, and any Unicode at all.
HOST_PIECES = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "LOCALHOST",
            "ｌｏｃａｌｈｏｓｔ",
            "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ",
            "xn--",
            "xn--a",
            "xn--localhost-",
            "xn--bcher-kva",
            "bücher",
            "example",
            "org",
            "127",
            "０",
            "１２７",
            "0x7f",
            "0177",
            "2130706433",
            "-",
            "_",
            ".",
            "。",
            "．",
            "｡",
            "..",
            "\u200d",
            "\u200c",
            "\u202e",
            "\u0301",
            "ß",
            "ς",
            "İ",
            "ﬁ",
            "%00",
            "%2e",
            "@",
            ":",
            "[",
            "]",
            "\\",
            " ",
            "a" * 64,
        ]
    ),
    st.text(min_size=1, max_size=12),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
)
HOSTS = st.lists(HOST_PIECES, min_size=1, max_size=6).map("".join)
IPV6 = st.one_of(
    st.ip_addresses(v=6).map(str),
    st.sampled_from(
        ["2001::7f00:1", "fec0::1", "3fff::1", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe"]
    ),
).map(lambda address: f"[{address}]")
PORTS = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=70000).map(lambda port: f":{port}"),
    st.sampled_from([":", ":http", ":８０", ":0x50", ":99999999999999999999"]),
)
SCHEMES = st.sampled_from(
    ["http://", "https://", "HTTPS://", "ftp://", "//", "", "http:/", "ｈｔｔｐ://"]
)
PATHS = st.one_of(st.just(""), st.just("/"), st.text(max_size=20).map(lambda text: "/" + text))
URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
    SCHEMES,
    st.one_of(HOSTS, IPV6, st.ip_addresses(v=4).map(str)),
    PORTS,
    PATHS,
)
KNOWN = [
    "http://xn--a.example",
    "http://xn--localhost-/x",
    "http://[2001::7f00:1]/",
    "http://localhost。/",
    "http://１２７.０.０.１/",
    "http://127。0。0。1/",
    "https://site.example:8443/",
]


def with_examples(name, **others):
    """The cases the outside probe found, run first in every property."""

    def decorate(test):
        for url in KNOWN:
            test = example(**{name: url}, **others)(test)
        return test

    return decorate


@FUZZ
@given(URLS)
@with_examples("url")
def test_the_form_accepts_or_refuses_in_words_and_the_guard_agrees(url):
    for allow_private in (False, True):
        with override_settings(WORDPRESS_ALLOW_PRIVATE_HOSTS=allow_private):
            try:
                saved = normalise_site_url(url)
            except forms.ValidationError as exc:
                assert exc.messages and all(message.strip() for message in exc.messages)
                event(f"form refused (private hosts {'allowed' if allow_private else 'refused'})")
                continue
        event(f"form accepted (private hosts {'allowed' if allow_private else 'refused'})")
        # What the form stores, the client and (with public DNS) the guard accept.
        client = WordPressClient(saved, KEY, resolver=public_resolver, allow_private=allow_private)
        with client:
            guard = OutboundGuard(allow_private=allow_private, resolver=public_resolver)
            assert guard.check_url(client.site_url + "/")


@FUZZ
@given(URLS, st.booleans())
@with_examples("url", private=False)
def test_the_guard_and_the_client_constructor_refuse_only_with_their_own_errors(url, private):
    try:
        parsed = parse_url(url, allow_private=private)
    except BlockedAddress as exc:
        assert exc.message
    else:
        assert isinstance(parsed, httpx.URL)
    try:
        OutboundGuard(allow_private=private, resolver=public_resolver).check_url(url)
    except (BlockedAddress, SiteUnreachable) as exc:
        assert exc.message
        event("guard refused")
    else:
        event("guard accepted")
    try:
        WordPressClient(url, KEY, resolver=public_resolver, allow_private=private).close()
    except WordPressError as exc:
        assert exc.message and KEY not in exc.message


@FUZZ
# A header value cannot hold line breaks or NUL (httpx refuses to build such a response).
@given(st.one_of(URLS, st.text(max_size=30)).map(lambda text: re.sub(r"[\r\n\x00]", "", text)))
@with_examples("location")
def test_any_redirect_target_ends_in_an_answer_or_a_typed_error(location):
    def answer(request):
        if str(request.url) == f"{SITE}/api/v1/sync/ping":
            return httpx.Response(302, headers={"Location": location.encode("utf-8")})
        return httpx.Response(200, json=PING)

    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=answer)
        with WordPressClient(SITE, KEY, resolver=public_resolver, max_retries=0) as client:
            try:
                assert client.ping()["plugin"] == "association-app"
                event("redirect followed")
            except WordPressError as exc:
                assert exc.message and KEY not in exc.message
                event(f"redirect refused ({type(exc).__name__})")
