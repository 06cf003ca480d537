"""Property tests of ``moodstream.common.redaction``: whatever the password, it never survives redaction.

Passwords are drawn with the characters that break naive redactors (``@``, ``:``, ``%40``, unicode,
quotes) in every URL scheme moodstream accepts (camera sources, Redis and PostgreSQL URLs). The
redacted text must contain the password in none of its spellings (raw, URL-decoded, URL-encoded), and
the parts an operator needs (scheme, user, host, port, path) must survive unchanged.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus, unquote

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from moodstream.common.redaction import LONG_SECRET, MASK, RedactingFilter, redact_text, redact_url

SCHEMES = (
    "rtsp",
    "rtsps",
    "http",
    "https",
    "redis",
    "rediss",
    "postgresql",
    "postgres",
    "postgresql+psycopg",
)
"""Every scheme moodstream accepts in a URL that may carry a password (registry, settings)."""

HOSTS = st.sampled_from(["192.0.2.10", "cam-7.example.net", "db", "[2001:db8::5]", "h"])
PORTS = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
PATHS = st.sampled_from(["/stream1", "/moodstream?sslmode=require", "/0", "", "/Streaming/Channels/101"])
USERS = st.from_regex(r"[A-Za-z0-9_.\-]{0,10}", fullmatch=True)

_SPECIAL = st.sampled_from(["@", ":", "%40", "%", "!", "$", "&", "'", '"', "é", "密", "🔑", "=", ";", ","])
_PLAIN = st.text(
    alphabet=st.characters(
        blacklist_categories=["Cs", "Cc", "Zs", "Zl", "Zp", "Cn"],
        blacklist_characters="/?#*\\",
    ),
    min_size=1,
    max_size=12,
)
RAW_PASSWORDS = st.lists(st.one_of(_SPECIAL, _PLAIN), min_size=1, max_size=6).map("".join)
"""Passwords that can stand raw in a URL's userinfo (no '/', '?', '#' or white space: those end it)."""

ANY_PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="*"), min_size=3, max_size=24
)
"""Any text at all; it reaches a URL only URL-encoded."""


def spellings(password: str) -> set[str]:
    """The password as it may show up: raw, URL-decoded, URL-encoded (as urllib and SQLAlchemy do it)."""
    encoded = {quote(password, safe=""), quote(password), quote_plus(password)}
    return {password, unquote(password), *encoded} - {""}


def assert_hidden(out: str, password: str, expected: str) -> None:
    """``out`` is exactly ``expected`` and none of the password's spellings appears in it."""
    assert out == expected
    for spelling in spellings(password):
        assume(spelling not in expected.replace(MASK, ""))  # a coincidence with the host, not a leak
        assert spelling not in out, f"password spelling {spelling!r} survived in {out!r}"


@settings(max_examples=300)
@given(
    scheme=st.sampled_from(SCHEMES),
    user=USERS,
    password=RAW_PASSWORDS,
    host=HOSTS,
    port=PORTS,
    path=PATHS,
)
@example(scheme="rtsp", user="cam", password="p@ss:w%40rd", host="192.0.2.10", port=":554", path="/s")
@example(scheme="postgresql", user="", password="@@::", host="db", port="", path="/x")
# a user named like a secret key (pw, token) keeps its host
@example(scheme="rtsp", user="PW", password="@", host="192.0.2.10", port="", path="/stream1")
@example(scheme="rtsp", user="a.token", password="x", host="h", port=":554", path="/s")
def test_raw_password_in_userinfo_is_masked_and_host_survives(
    scheme: str, user: str, password: str, host: str, port: str, path: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{port}{path}"
    assert_hidden(redact_url(url), password, f"{scheme}://{user}:{MASK}@{host}{port}{path}")


@settings(max_examples=300)
@given(
    scheme=st.sampled_from(SCHEMES),
    user=USERS,
    password=ANY_PASSWORDS,
    host=HOSTS,
    port=PORTS,
    path=PATHS,
)
def test_url_encoded_password_is_masked_in_every_spelling(
    scheme: str, user: str, password: str, host: str, port: str, path: str
) -> None:
    url = f"{scheme}://{user}:{quote(password, safe='')}@{host}{port}{path}"
    out = redact_url(url)
    assert out == f"{scheme}://{user}:{MASK}@{host}{port}{path}"
    for spelling in spellings(password) | {quote(password, safe="")}:
        assume(spelling not in f"{scheme}://{user}:@{host}{port}{path}")
        assert spelling not in out


@settings(max_examples=200)
@given(
    scheme=st.sampled_from(SCHEMES),
    password=RAW_PASSWORDS,
    host=HOSTS,
    before=st.sampled_from(["cannot open ", "error: ", "(", "'", '"', "source=", ""]),
    after=st.sampled_from([" failed", ": timeout", ") retrying", "'", '"', "\nnext line", ""]),
)
def test_url_inside_free_text_loses_its_password(
    scheme: str, password: str, host: str, before: str, after: str
) -> None:
    assume(not any(c in password for c in "'\"()"))  # a quote would end the URL in the text too
    text = f"{before}{scheme}://u:{password}@{host}/s{after}"
    assert_hidden(redact_text(text), password, f"{before}{scheme}://u:{MASK}@{host}/s{after}")


@settings(max_examples=200)
@given(
    secret=ANY_PASSWORDS,
    left=st.text(alphabet="abc xyz:/-", max_size=20),
    right=st.text(alphabet="abc xyz:/-", max_size=20),
    form=st.sampled_from(["raw", "encoded", "slash-safe", "plus-encoded"]),
    glued=st.booleans(),
)
def test_known_secret_is_hidden_in_any_spelling(
    secret: str, left: str, right: str, form: str, glued: bool
) -> None:
    """A known secret standing as a token is hidden in any spelling; one of LONG_SECRET characters or more
    is hidden even glued inside a word."""
    assume(secret.strip("*") and not set(secret) <= set("abc xyz:/-"))
    shown = {
        "raw": secret,
        "encoded": quote(secret, safe=""),
        "slash-safe": quote(secret),
        "plus-encoded": quote_plus(secret),
    }[form]
    if glued:
        assume(len(min(spellings(secret), key=len)) >= LONG_SECRET)
    else:
        left, right = left + " ", " " + right
    out = redact_text(f"{left}{shown}{right}", [secret])
    for spelling in spellings(secret):
        assume(spelling not in f"{left}{right}")
        assert spelling not in out


@settings(max_examples=100)
@given(
    secret=st.from_regex(r"[A-Za-z0-9]{1,7}", fullmatch=True),
    prefix=st.from_regex(r"[A-Za-z0-9]{1,6}", fullmatch=True),
    suffix=st.from_regex(r"[A-Za-z0-9]{0,6}", fullmatch=True),
)
def test_short_secret_never_eats_into_a_longer_word(secret: str, prefix: str, suffix: str) -> None:
    """``rtsp://u:p@h`` must not become ``rts***://``: a short secret is masked only as a whole token."""
    assume(secret not in {"scheme", "u", "h", "said"})
    word = f"{prefix}{secret}{suffix}"
    text = f"scheme {word}://u:{secret}@h/{word} said {word}"
    assert redact_text(text, [secret]) == f"scheme {word}://u:{MASK}@h/{word} said {word}"


@settings(max_examples=100)
@given(
    key=st.sampled_from(["password", "PASSWORD", "passwd", "pwd", "secret", "token", "api_key", "apikey"]),
    value=st.from_regex(r"[A-Za-z0-9@:%!$.\-]{4,20}", fullmatch=True),
    sep=st.sampled_from(["=", ": ", " = "]),
)
def test_password_pairs_in_text_and_query_strings_are_masked(key: str, value: str, sep: str) -> None:
    for text in (f"dsn host=db {key}{sep}{value} port=5432", f"https://h/x?{key}{sep.strip()}{value}&a=1"):
        out = redact_text(text)
        assert value not in out, out
        assert "host=db" in out or "https://h/x?" in out


@settings(max_examples=100, deadline=None)
@given(password=RAW_PASSWORDS)
def test_logging_filter_hides_the_password_in_message_args_and_traceback(password: str) -> None:
    assume(len(password) >= 3 and password.strip("*"))
    record_texts: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record_texts.append(self.format(record))

    handler = Capture()
    handler.addFilter(RedactingFilter([password]))
    logger = logging.getLogger("moodstream.test.redaction_props")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("open %s", f"rtsp://u:{quote(password, safe='')}@h/s")
        try:
            raise ValueError(f"auth failed with {password}")
        except ValueError:
            logger.exception("camera failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(record_texts)
    for spelling in spellings(password):
        assume(spelling not in "open rtsp://u:***@h/s camera failed ValueError auth failed with Traceback")
        if len(spelling) >= LONG_SECRET:
            assert spelling not in text
        else:  # a short one may be part of a longer word of the traceback (a file name): never as a token
            assert not as_token(spelling).search(text), f"{spelling!r} survived as a token"


def as_token(spelling: str) -> re.Pattern[str]:
    """``spelling`` with no word character touching it where it starts or ends with one."""
    before = r"(?<!\w)" if re.match(r"\w", spelling[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", spelling[-1]) else ""
    return re.compile(before + re.escape(spelling) + after)
