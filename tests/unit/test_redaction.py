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
