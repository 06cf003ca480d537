"""Redaction of passwords in URLs, free text and log records."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodstream.common.redaction import RedactingFilter, redact_text, redact_url

CASES = [
    ("rtsp://cam:s3cr@t@10.0.0.5/stream", "rtsp://cam:***@10.0.0.5/stream"),
    ("postgresql://u:p%40ss@db:5432/x?sslmode=require", "postgresql://u:***@db:5432/x?sslmode=require"),
    ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ("http://h/x?password=abc&user=me", "http://h/x?password=***&user=me"),
    ("https://h/x?token=abc", "https://h/x?token=***"),
    ("rtsp://user@host/stream", "rtsp://user@host/stream"),
    ("videos/counter.mp4", "videos/counter.mp4"),
    ("postgresql://postgres:@/db?host=/tmp/s", "postgresql://postgres:***@/db?host=/tmp/s"),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_finds_urls_and_known_secrets_in_any_spelling() -> None:
    secret = "p@ss:w0rd"
    text = f"failed rtsp://u:{quote(secret, safe='')}@h/s then {secret} and {quote(secret, safe='')}"
    out = redact_text(text, [secret])
    assert secret not in out and quote(secret, safe="") not in out
    assert out.startswith("failed rtsp://u:***@h/s")


PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="/?#"),
    min_size=4,
    max_size=30,
)


@given(password=PASSWORDS, user=st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_password_in_userinfo_never_survives(password: str, user: str) -> None:
    for scheme in ("rtsp", "postgresql", "redis"):
        url = f"{scheme}://{user}:{password}@192.0.2.1:554/stream"
        out = redact_url(url)
        assert out == f"{scheme}://{user}:***@192.0.2.1:554/stream"
        assert redact_url(f"{scheme}://{user}:{quote(password, safe='')}@h/s") == f"{scheme}://{user}:***@h/s"


def test_logging_filter_redacts_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("moodstream.test.redaction")
    handler_filter = RedactingFilter(secrets=["Hunter2-secret"])
    caplog.handler.addFilter(handler_filter)
    try:
        logger.warning("cannot open %s", "rtsp://cam:Hunter2-secret@h/s")
        try:
            raise RuntimeError("auth failed for Hunter2-secret")
        except RuntimeError:
            logger.exception("camera failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "Hunter2" not in caplog.text
    assert "rtsp://cam:***@h/s" in caplog.text and "auth failed for ***" in caplog.text


KNOWN_SECRET_CASES = [
    # (text, the registry's substituted secrets, expected): URL structure first, then exact values as tokens
    ("rtsp://u:p@cam/stream1", ["p"], "rtsp://u:***@cam/stream1"),
    ("rtsp://u:rtsp@cam/stream1", ["rtsp"], "rtsp://u:***@cam/stream1"),
    ("rtsps://u:s@cam/s1 streams s1", ["s"], "rtsps://u:***@cam/s1 streams s1"),
    ("http://cam/snapshot.cgi?user=admin&lp=Zq7", ["Zq7"], "http://cam/snapshot.cgi?user=admin&lp=***"),
    ("http://cam/snap.cgi?user=admin&loginpas=hunter2", [], "http://cam/snap.cgi?user=admin&loginpas=***"),
    ("http://cam/s?channel=1&camPwd=x&subtype=0", [], "http://cam/s?channel=1&camPwd=***&subtype=0"),
    ("cannot open http://cam/s?code=Zq7: 401", ["Zq7"], "cannot open http://cam/s?code=***: 401"),
    ("auth failed for Zq7, retrying", ["Zq7"], "auth failed for ***, retrying"),
    ("xZq7y and Zq7y stay whole", ["Zq7"], "xZq7y and Zq7y stay whole"),
    ("long secrets go anywhere: xLongSecret99y", ["LongSecret99"], "long secrets go anywhere: x***y"),
    ("encoded: http://cam/s?k=p%40ss", ["p@ss"], "encoded: http://cam/s?k=***"),
]


@pytest.mark.parametrize(("text", "secrets", "expected"), KNOWN_SECRET_CASES)
def test_redact_text_by_url_structure_and_known_secrets_as_tokens(
    text: str, secrets: list[str], expected: str
) -> None:
    assert redact_text(text, secrets) == expected
