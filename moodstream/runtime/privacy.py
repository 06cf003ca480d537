"""Privacy checks: find anything that looks like a stored face image (or a secret) where none may be.

moodstream promises that no face image, crop or embedding is ever persisted: PostgreSQL holds only
aggregates and files on disk hold no picture of a person. These scanners check that promise on real
data, for tests and for operators (``scan_database`` / ``scan_directory`` return findings; an empty
list means nothing was found):

* an image signature anywhere in a value or file: JPEG ``FF D8 FF``, PNG ``89 50 4E 47 0D 0A 1A 0A``,
  also in hex (``ffd8ff``) and base64 (``/9j/``, ``iVBORw0KGgo``) spelling inside text;
* a binary blob the size of a face crop or larger (``min_blob_bytes``, default 1024 = 32x32 gray,
  smaller than any crop the shipped FER models take) in a ``bytea`` column;
* optionally, any spelling of given secrets (passwords), via ``moodstream.common.redaction.secret_spellings``.

Every table and column of every non-system schema is read (values cast to text, ``bytea`` as bytes),
so a table added later is covered without changing this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, text

from moodstream.common.redaction import secret_spellings

JPEG_SIGNATURE: Final[bytes] = b"\xff\xd8\xff"
PNG_SIGNATURE: Final[bytes] = b"\x89PNG\r\n\x1a\n"
IMAGE_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "JPEG": (JPEG_SIGNATURE, b"ffd8ff", b"FFD8FF", b"/9j/"),
    "PNG": (PNG_SIGNATURE, b"89504e470d0a1a0a", b"89504E470D0A1A0A", b"iVBORw0KGgo"),
}
"""Image kind -> byte patterns that betray it (raw, hex and base64 spellings)."""

DEFAULT_MIN_BLOB_BYTES: Final[int] = 1024
"""Smallest binary value reported as possibly a face crop (a 32x32 gray crop)."""

_SYSTEM_SCHEMAS: Final[tuple[str, ...]] = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class Finding:
    """One suspicious value: where it is (``table.column`` or a file path) and what it looks like."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def find_in_bytes(data: bytes, secrets: Iterable[str] = (), *, check_images: bool = True) -> list[str]:
    """Descriptions of what ``data`` contains: image signatures and secret spellings (never the secret)."""
    found = []
    if check_images:
        for kind, patterns in IMAGE_SIGNATURES.items():
            if any(p in data for p in patterns):
                found.append(f"{kind} signature")
    for index, secret in enumerate(secrets):
        if any(s.encode("utf-8") in data for s in secret_spellings(secret)):
            found.append(f"secret #{index + 1}")
    return found


def _relations(conn: Connection) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, data type) of every column of every user table and materialised view."""
    rows = conn.execute(
        text(
            """
            SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> ALL(:system)
              AND n.nspname NOT LIKE 'pg_temp%'
            ORDER BY 1, 2, a.attnum
            """
        ),
        {"system": list(_SYSTEM_SCHEMAS)},
    )
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def _column_values(conn: Connection, schema: str, table: str, column: str, bytea: bool) -> Iterator[bytes]:
    prep = conn.dialect.identifier_preparer
    name = f"{prep.quote(schema)}.{prep.quote(table)}"
    expr = prep.quote(column) if bytea else f"CAST({prep.quote(column)} AS text)"
    query = text(f"SELECT {expr} FROM {name} WHERE {prep.quote(column)} IS NOT NULL")
    result = conn.execute(query.execution_options(yield_per=500))
    for (value,) in result:
        yield bytes(value) if bytea else str(value).encode("utf-8")


def scan_database(
    conn: Connection,
    secrets: Iterable[str] = (),
    *,
    min_blob_bytes: int = DEFAULT_MIN_BLOB_BYTES,
    check_images: bool = True,
) -> list[Finding]:
    """Findings in every column of every table of the connected database (empty: nothing found).

    Also reports large objects (``pg_largeobject_metadata``), which no moodstream table uses.
    """
    wanted = tuple(s for s in secrets if s)
    findings: list[Finding] = []
    for schema, table, column, data_type in _relations(conn):
        bytea = data_type == "bytea"
        for value in _column_values(conn, schema, table, column, bytea):
            where = f"{schema}.{table}.{column}"
            for what in find_in_bytes(value, wanted, check_images=check_images):
                findings.append(Finding(where, what))
            if check_images and bytea and len(value) >= min_blob_bytes:
                findings.append(Finding(where, f"binary value of {len(value)} bytes (crop-sized)"))
    large_objects = conn.execute(text("SELECT count(*) FROM pg_largeobject_metadata")).scalar_one()
    if large_objects:
        findings.append(Finding("pg_largeobject", f"{large_objects} large objects"))
    return findings


def scan_directory(
    root: Path,
    secrets: Iterable[str] = (),
    *,
    exclude: Iterable[Path] = (),
    check_images: bool = True,
) -> list[Finding]:
    """Findings in every regular file under ``root`` except those under an ``exclude`` directory.

    Files are read whole (the data directory holds logs, configs and registries, not media); symbolic
    links are not followed.
    """
    skipped = [Path(p).resolve() for p in exclude]
    wanted = tuple(s for s in secrets if s)
    findings: list[Finding] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder).resolve()
        dirs[:] = [d for d in dirs if (here / d).resolve() not in skipped]
        for name in files:
            path = here / name
            if not path.is_file() or path.is_symlink():
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                findings.append(Finding(str(path), f"unreadable ({exc.strerror})"))
                continue
            findings.extend(
                Finding(str(path), what) for what in find_in_bytes(data, wanted, check_images=check_images)
            )
    return findings
