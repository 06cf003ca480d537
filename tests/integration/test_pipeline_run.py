"""`moodstream run --demo` on a fresh data directory: embedded servers, every stage, a summary, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from moodstream.runtime.demo import write_demo_video
from moodstream.runtime.embedded import EmbeddedRedis


def test_run_demo_on_a_fresh_machine_counts_every_sampled_frame(server_dir: Path) -> None:
    tmp_path = server_dir  # outside pytest's basetemp, which the embedded PostgreSQL user may lose access to
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
    assert result.returncode == 0, output[-3000:].replace("\n", " | ")
    assert (tmp_path / "data" / "demo" / "astronaut.mp4").is_file()
    summary = output[output.index("per-store summary") :]
    visits, faces = (line for line in summary.splitlines() if "demo-store" in line)
    cells = [c.strip() for c in visits.strip("│ ").split("│")]
    # 30 s clip with 5 visits (3 readable, 2 below the quality gate), on two cameras: the entrance samples
    # 60 frames at 2 fps, the counter 30 at 1 fps
    assert (cells[1], cells[2]) == ("10", "6"), visits
    cells = [c.strip() for c in faces.strip("│ ").split("│")]
    assert cells[1] == "90", faces
    assert int(cells[2]) > int(cells[3]) > 0, faces  # faces found; fewer of them readable
    assert "Traceback" not in output


def test_ctrl_c_stops_every_stage_cleanly_and_prints_the_summary(server_dir: Path, tmp_path: Path) -> None:
    data = server_dir / "data"
    video = write_demo_video(data / "demo" / "loop.mp4")
    registry = tmp_path / "stores.yaml"
    registry.write_text(
        "version: 1\nstores:\n  - id: s1\n    branch: b\n    timezone: UTC\n    cameras:\n"
        f"      - id: cam\n        source: {video}\n        fps: 2\n        loop: true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
    env["MOODSTREAM_DATA_DIR"] = str(data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moodstream.cli.app", "run", "-c", str(registry)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        counted = 0
        while counted < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            counted = _counted_frames(data)
        assert counted >= 3, "the pipeline never counted a frame"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    assert "per-store summary" in output and "Traceback" not in output
    assert not EmbeddedRedis(data).is_running()  # servers started by `run` are stopped by it


def _counted_frames(data: Path) -> int:
    server = EmbeddedRedis(data)
    if not server.is_running():
        return 0
    with redis.Redis.from_url(server.url) as client:
        raw: Any = client.hgetall("moodstream:stats:aggregator")
    return sum(int(v) for k, v in raw.items() if k.endswith(b":frames_in"))
