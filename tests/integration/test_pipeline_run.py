"""`moodstream run --demo` on a fresh data directory: embedded servers, every stage, a summary, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_run_demo_on_a_fresh_machine_counts_every_sampled_frame(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
    env["MOODSTREAM_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "moodstream.cli.app", "run", "--demo", "--duration", "150"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (tmp_path / "data" / "demo" / "astronaut.mp4").is_file()
    summary = output[output.index("per-store summary") :]
    row = next(line for line in summary.splitlines() if "demo-store" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    # 12 s clip: the entrance camera samples 24 frames at 2 fps, the counter camera 12 at 1 fps
    assert cells[1] == "36", row
    assert int(cells[2]) > 0, row  # faces were found and classified
    assert "Traceback" not in output
