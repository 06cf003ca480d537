"""Privacy by design: small groups suppressed in reports and dashboards, staff cameras refused, and after a
real run no face image anywhere in PostgreSQL or on disk (only transiently in Redis, within the caps).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from moodstream.cli.app import build_app
from moodstream.common.streams import StreamNames
from moodstream.runtime.database import parse_database_url
from moodstream.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from moodstream.runtime.privacy import scan_database, scan_directory
from moodstream.schemas.labels import EMOTIONS
from moodstream.schemas.messages import FacesMessage
from tests.integration import dashboard_seed

# ---------------------------------------------------------------------------- reports


@pytest.fixture
def seeded_url(migrated_database_url: str) -> str:
    engine = create_engine(parse_database_url(migrated_database_url))
    with engine.begin() as conn:
        dashboard_seed.seed(conn)
    engine.dispose()
    return migrated_database_url


def _report(url: str, *args: str) -> Any:
    argv = ["report", "--from", "2024-01-15", "--to", "2024-01-15", "--database-url", url, *args]
    result = CliRunner().invoke(build_app(), argv)
    assert result.exit_code == 0, result.output
    return result.stdout


IDENTITY = ("branch", "store_id", "store_name", "timezone", "period_start", "frames", "suppressed")


def test_report_min_visits_suppresses_small_rows_and_keeps_them_out_of_totals(seeded_url: str) -> None:
    plain = json.loads(_report(seeded_url, "--format", "json"))
    doc = json.loads(_report(seeded_url, "--format", "json", "--min-visits", "3"))
    small = {r["store_id"] for r in plain["rows"] if r["visits"] < 3}
    assert small == {"hn-kimma"}, "the seed has exactly one store-day below 3 visits"
    for row in doc["rows"]:
        if row["store_id"] in small:
            assert row["suppressed"] is True and row["frames"] == 6
            assert all(v is None for k, v in row.items() if k not in IDENTITY), row
        else:
            assert row["suppressed"] is False and row["visits"] >= 3
    shown = [r for r in plain["rows"] if r["store_id"] not in small]
    for key in ("visits", "readable_visits", "faces", *(f"visits_{e}" for e in EMOTIONS), "faces_happy"):
        assert doc["overall"][key] == sum(r[key] for r in shown), key
    hanoi = next(b for b in doc["branches"] if b["branch"] == "hanoi")
    assert hanoi["visits"] == sum(r["visits"] for r in shown if r["branch"] == "hanoi")
    assert not any(s["store_id"] in small for s in doc["stores"]), "a suppressed store must not be totalled"
    assert doc["request"]["min_visits"] == 3
    assert all(not r["suppressed"] for r in plain["rows"])


@pytest.mark.parametrize("fmt", ["table", "csv", "html"])
def test_report_min_visits_shows_no_count_of_a_suppressed_row(seeded_url: str, fmt: str) -> None:
    out = _report(seeded_url, "--format", fmt, "--min-visits", "3")
    if fmt == "csv":
        (kimma,) = [r for r in csv.DictReader(io.StringIO(out)) if r["store_id"] == "hn-kimma"]
        assert kimma["suppressed"] == "True" and kimma["frames"] == "6"
        assert all(v == "" for k, v in kimma.items() if k not in IDENTITY), kimma
        return
    kimma = [
        line for line in out.splitlines() if "Kim Ma" in line and ("2024-01-15" in line or "<td" in line)
    ]
    assert kimma, out
    for line in kimma:
        assert "suppressed" in line and "(" not in line and "%" not in line, line
    assert any(("<3 visits" if fmt == "table" else "&lt;3") in line for line in kimma)


# Dashboards: small groups are suppressed by the database's views, for the dashboards and for anyone
# else logged in as the read-only role: tests/integration/test_policy_in_database.py.


# ---------------------------------------------------------------------------- staff cameras


def test_a_camera_facing_staff_is_refused_with_the_legal_reason(tmp_path: Path) -> None:
    registry = tmp_path / "stores.yaml"
    registry.write_text(
        "version: 1\nstores:\n  - id: s1\n    branch: b\n    timezone: UTC\n    cameras:\n"
        "      - id: till\n        source: till.mp4\n        fps: 2\n        faces_staff: true\n"
    )
    result = CliRunner().invoke(build_app(), ["cameras", "validate", "-c", str(registry)])
    assert result.exit_code == 1
    assert "faces_staff" in result.stderr and "AI Act" in result.stderr and ":10:" in result.stderr


# ---------------------------------------------------------------------------- the scanners can fail


def _jpeg() -> bytes:
    ok, buffer = cv2.imencode(".jpg", np.full((48, 48), 128, np.uint8))
    assert ok
    return buffer.tobytes()


def test_scanners_find_a_planted_image_crop_and_secret(migrated_database_url: str, tmp_path: Path) -> None:
    engine = create_engine(parse_database_url(migrated_database_url))
    with engine.begin() as conn:
        assert scan_database(conn) == []
        conn.execute(text("CREATE TABLE scratch (note text, blob bytea)"))
        conn.execute(
            text("INSERT INTO scratch VALUES (:note, :jpeg), (NULL, :crop)"),
            {"note": "x", "jpeg": _jpeg(), "crop": bytes(48 * 48)},
        )
        conn.execute(text("UPDATE stores SET name = 'pw hunter2' WHERE false"))
        findings = [str(f) for f in scan_database(conn, ["hunter2"])]
    engine.dispose()
    assert findings == [
        "public.scratch.blob: JPEG signature",
        "public.scratch.blob: binary value of 2304 bytes (crop-sized)",
    ]
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_bytes(b"ok\n" + _jpeg())
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "aof").write_bytes(_jpeg())
    found = sorted(
        str(f).replace(str(tmp_path), "") for f in scan_directory(tmp_path, exclude=[tmp_path / "server"])
    )
    assert found == ["/face.png: PNG signature", "/logs/run.log: JPEG signature"]


# ---------------------------------------------------------------------------- after a real run


def _write_clip(path: Path, image: Path, seconds: float = 3.0, fps: int = 8) -> Path:
    """A short clip of a shared photo with people's faces, panning a little (written under tmp only)."""
    photo = cv2.imread(str(image))
    assert photo is not None
    h, w = photo.shape[:2]
    size = (min(640, w) // 2 * 2, min(360, h) // 2 * 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for i in range(int(seconds * fps)):
        x = min(w - size[0], i * 2)
        writer.write(np.ascontiguousarray(photo[: size[1], x : x + size[0]]))
    writer.release()
    return path


def test_after_a_run_no_face_image_is_in_postgres_or_on_disk(
    shared_data: Path, tmp_path: Path, server_dir: Path
) -> None:
    data_dir = server_dir / "data"  # its embedded PostgreSQL cluster is deleted after the test
    clip = _write_clip(tmp_path / "clip.mp4", shared_data / "images" / "multiface.jpg")
    registry = tmp_path / "stores.yaml"
    registry.write_text(
        "version: 1\npipeline:\n  stream_maxlen: 50\nstores:\n  - id: s1\n    branch: b\n    timezone: UTC\n"
        f"    cameras:\n      - id: cam\n        source: {clip}\n        fps: 4\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
    env["MOODSTREAM_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "moodstream.cli.app", "run", "-c", str(registry), "--duration", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with EmbeddedPostgres(data_dir) as postgres:
        engine = create_engine(postgres.url())
        with engine.connect() as conn:
            faces = conn.execute(text("SELECT COALESCE(sum(faces), 0) FROM emotion_counts")).scalar_one()
            db_findings = scan_database(conn)
        engine.dispose()
    with EmbeddedRedis(data_dir) as server:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        names = StreamNames()
        faces_entries: Any = client.xrange(names.faces)
        other_keys = [k for k in client.scan_iter() if client.type(k) != b"stream"]
        redis_findings = [k for k in other_keys if b"\xff\xd8\xff" in repr(client.dump(k)).encode()]
        client.close()
    assert faces > 0, "the run classified faces (else the scan proves nothing)"
    assert db_findings == []
    servers = [data_dir / "postgres", data_dir / "redis"]
    assert scan_directory(data_dir, exclude=servers) == []
    assert redis_findings == []
    assert len(faces_entries) <= 50 + 100, "crops stay in Redis only within the stream cap"
    crops = [FacesMessage.decode(f).crops for _, f in faces_entries]
    assert sum(c.shape[0] for c in crops) <= faces


def test_redis_append_only_file_keeps_images_only_about_as_long_as_the_stream_caps(server_dir: Path) -> None:
    """The AOF logs every XADD (frames, crops); its rewrite must drop trimmed entries from the disk too."""
    server = EmbeddedRedis(server_dir)
    client = redis.Redis.from_url(server.start())
    try:
        frame = b"\xff\xd8\xff" + np.random.default_rng(0).bytes(60_000)  # incompressible, like a JPEG
        for i in range(600):  # 36 MB of frames through a stream capped at 50 entries (3 MB)
            client.xadd("moodstream:frames", {"seq": i, "jpeg": frame}, maxlen=50, approximate=False)

        def aof_bytes() -> int:  # the size Redis reports once no rewrite is running (else a large value)
            info: Any = client.info("persistence")
            busy = info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
            return 2**40 if busy else int(info["aof_current_size"])

        deadline = time.monotonic() + 10  # the rewrite runs in the background, checked every 100 ms
        while not 0 < aof_bytes() <= 24 * 2**20 and time.monotonic() < deadline:  # 0: a rewrite is ending
            time.sleep(0.1)
        aof = aof_bytes()
        on_disk = sum(
            p.stat().st_size for p in (server_dir / "redis").rglob("appendonly.aof*") if p.is_file()
        )
        assert on_disk <= aof + 2**20, "Redis reports the size of the file on disk"
        live = int(client.memory_usage("moodstream:frames") or 0)
        print(f"\nAOF after 36 MB of frames through a 50-entry stream: {aof / 2**20:.1f} MiB "
              f"(live stream {live / 2**20:.1f} MiB)")  # fmt: skip
        assert aof <= 24 * 2**20, "the AOF keeps trimmed frames on disk beyond its 16 MB rewrite threshold"
    finally:
        client.close()
        server.stop()
