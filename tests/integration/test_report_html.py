"""The HTML report in headless Chromium (Debian's ``chromium``): self-contained, charts drawn, no console.

Skipped with a reason when no chromium binary is installed (``apt-get install -y chromium``).
The screenshot is kept under pytest's tmp dir and, when ``MOODSTREAM_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import create_engine

from moodstream.aggregator import ReportRequest, fetch_report, render
from moodstream.aggregator.report_html import EMOTION_COLORS
from moodstream.runtime.database import parse_database_url
from tests.integration import dashboard_seed

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"
)


def screenshot(html: Path, png: Path, profile: Path) -> list[str]:
    """Render ``html`` to ``png`` (1280x2400) in headless Chromium; return its console messages."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={png}",
        html.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def _color_pixels(image: np.ndarray, hex_color: str) -> int:
    rgb = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    bgr = np.array(rgb[::-1], dtype=np.int16)
    return int((np.abs(image.astype(np.int16) - bgr).max(axis=2) <= 8).sum())


@needs_chromium
def test_console_messages_are_detected(tmp_path: Path) -> None:
    """The harness itself: a page that logs an error is caught (so a clean run means something)."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('broken chart')</script></body></html>")
    messages = screenshot(page, tmp_path / "broken.png", tmp_path / "profile")
    assert any("broken chart" in m for m in messages)


@needs_chromium
def test_html_report_renders_its_charts_without_console_output(
    migrated_database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(parse_database_url(migrated_database_url))
    try:
        with engine.begin() as conn:
            dashboard_seed.seed(conn)
        with engine.connect() as conn:
            report = fetch_report(conn, ReportRequest(date_from=date(2024, 1, 15), date_to=date(2024, 1, 16)))
    finally:
        engine.dispose()
    html = render(report, "html")
    # self-contained: nothing to fetch (the only URL is the SVG namespace name, never requested)
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<script", html)
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count('class="bar"') == 7 and 'id="satisfaction-over-time"' in html

    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / "report.png"
    messages = screenshot(page, png, tmp_path / "profile")
    assert messages == []

    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 1280
    for emotion in ("happy", "neutral", "angry"):  # present in the seed, so their bars must be drawn
        assert _color_pixels(image, EMOTION_COLORS[emotion]) > 200, f"{emotion} bar not visible"
    if artifacts := os.environ.get("MOODSTREAM_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(artifacts) / "report.png")
