"""Removing secrets from anything that may reach a log line, an error, a metric or a table.

``redact_url`` hides the password of a URL; ``redact_text`` hides the passwords of every URL in a
free text plus ``password=...`` style pairs and any explicitly known secret; ``RedactingFilter`` applies
``redact_text`` to every log record that passes through a handler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"

# scheme://userinfo@ : userinfo runs up to the LAST '@' before the path (covers passwords with a raw '@').
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#]*)@")
_KEY_VALUE_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pass|pwd|pw|secret|token|api[_-]?key|auth)\b\s*[=:]\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,]+)",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, sep, _password = userinfo.partition(":")
    return f"{match.group('scheme')}{user}{':' + MASK if sep else ''}@"


def redact_url(url: str) -> str:
    """The URL with its password (and ``password=`` query values) replaced by ``***``; user and host kept.

    ``rtsp://cam:s3cr@t@10.0.0.5/stream`` -> ``rtsp://cam:***@10.0.0.5/stream``. Text without a
    password comes back unchanged.
    """
    return _KEY_VALUE_SECRET.sub(lambda m: m.group("key") + MASK, _URL_USERINFO.sub(_mask_userinfo, url))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with every URL password, ``password=...`` value and each known secret replaced by ``***``.

    Known secrets are also hidden in their URL-encoded and URL-decoded spellings (``secret_spellings``).
    """
    out = redact_url(text)
    spellings: set[str] = set()
    for secret in secrets:
        if secret:
            spellings.update(secret_spellings(secret))
    for spelling in sorted(spellings, key=len, reverse=True):
        if spelling:
            out = out.replace(spelling, MASK)
    return out


def secret_spellings(secret: str) -> set[str]:
    """Every way a secret may be written: raw, URL-decoded, and URL-encoded as urllib and SQLAlchemy
    encode it (``quote`` with and without ``/`` safe, ``quote_plus``; upper- and lower-case hex)."""
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="")}
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}
    return {secret, unquote(secret), unquote_plus(secret), *encoded, *lower} - {""}


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message (and exception text) of every record.

    Attach it to handlers: ``handler.addFilter(RedactingFilter(secrets=[db_password]))``.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite record.msg to the redacted message; always keep the record."""
        record.msg = redact_text(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_text(text, self._secrets)
            record.exc_info = None
        return True
