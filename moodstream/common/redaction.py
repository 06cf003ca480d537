"""Removing secrets from anything that may reach a log line, an error, a metric or a table.

``redact_url`` hides the password of a URL (its userinfo and the values of secret-looking query keys);
``redact_text`` hides the passwords of every URL in a free text plus ``password=...`` style pairs and any
explicitly known secret (the registry's substituted values): a known secret of ``LONG_SECRET`` characters
or more wherever it appears, a shorter one only where it stands as a whole token, so a short password
never eats into a word around it (``rtsp://`` stays ``rtsp://`` when the password is ``p``).
``RedactingFilter`` applies ``redact_text`` to every log record that passes through a handler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"

# scheme://userinfo@ : userinfo runs up to the LAST '@' before the path (covers passwords with a raw '@').
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#]*)@")
# ``password=value`` pairs; not a URL user named like a key (``rtsp://pw:***@host``: its userinfo is
# already masked, and the host after it must survive).
_KEY_VALUE_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pass|pwd|pw|secret|token|api[_-]?key|auth)\b\s*[=:]\s*)"
    rf"(?!{re.escape(MASK)}@)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,]+)",
    re.IGNORECASE,
)
# in a URL's query string, any key that merely contains a secret-looking word (loginpass, camPwd, sig)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;][^=&;#\s]*(?:pas|pwd|pw|secret|token|key|auth|sig|cred)[^=&;#\s]*=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
LONG_SECRET = 8
"""Known secrets this long are masked wherever they appear; shorter ones only as whole tokens."""


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, sep, _password = userinfo.partition(":")
    return f"{match.group('scheme')}{user}{':' + MASK if sep else ''}@"


def redact_url(url: str) -> str:
    """The URL with its password (and ``password=`` query values) replaced by ``***``; user and host kept.

    ``rtsp://cam:s3cr@t@10.0.0.5/stream`` -> ``rtsp://cam:***@10.0.0.5/stream``. Text without a
    password comes back unchanged.
    """
    out = _URL_USERINFO.sub(_mask_userinfo, url)
    out = _QUERY_SECRET.sub(lambda m: m.group("key") + (MASK if m.group("value") else ""), out)
    return _KEY_VALUE_SECRET.sub(lambda m: m.group("key") + MASK, out)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with every URL password, ``password=...`` value and each known secret replaced by ``***``.

    Known secrets are also hidden in their URL-encoded and URL-decoded spellings (``secret_spellings``);
    one shorter than ``LONG_SECRET`` only where no letter or digit touches it on either side.
    """
    out = redact_url(text)
    spellings: set[str] = set()
    for secret in secrets:
        if secret:
            spellings.update(secret_spellings(secret))
    for spelling in sorted(spellings, key=len, reverse=True):
        if len(spelling) >= LONG_SECRET:
            out = out.replace(spelling, MASK)
        else:
            out = _token_pattern(spelling).sub(MASK, out)
    return out


def _token_pattern(spelling: str) -> re.Pattern[str]:
    """``spelling`` as a whole token: no word character right before (after) it when it starts (ends)
    with one, and not a URL scheme (followed by ``://``)."""
    before = r"(?<!\w)" if re.match(r"\w", spelling[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", spelling[-1]) else ""
    return re.compile(before + re.escape(spelling) + after + r"(?!://)")


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

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (e.g. passwords of a camera added to a live registry)."""
        self._secrets = tuple(sorted(set(self._secrets) | {s for s in secrets if s}))

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite record.msg to the redacted message; always keep the record."""
        record.msg = redact_text(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_text(text, self._secrets)
            record.exc_info = None
        return True
