"""`moodstream analyze VIDEO_OR_IMAGE`: offline, single process, no servers.

Samples the file exactly as ingest would (same sampler, same JPEG round trip), runs the shared
per-frame analysis (``moodstream.runtime.frame_analysis``) and prints per-emotion counts and shares with the
satisfaction index, like the paper's statistics; ``--annotate OUT`` writes the sampled frames with
boxes and emotion labels (a video, or an image for a single image input).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from moodstream.schemas.labels import EMOTIONS, satisfaction_index
from moodstream.schemas.messages import ClassifiedFace

console = Console(stderr=True)
out_console = Console()

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
BATCH_FRAMES = 8

EMOTION_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (40, 200, 240),
    "sad": (200, 120, 40),
    "surprise": (240, 200, 40),
    "neutral": (190, 190, 190),
}


@dataclass
class AnalysisSummary:
    """Totals of one analysed file: frames, faces, faces per emotion (argmax of each face)."""

    file: str
    fps: float | None
    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EMOTIONS, 0))

    def add(self, faces: tuple[ClassifiedFace, ...]) -> None:
        """Count one analysed frame and its faces."""
        self.frames += 1
        self.frames_with_faces += bool(faces)
        self.faces += len(faces)
        for face in faces:
            self.counts[face.emotion] += 1

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict: counts, shares of faces and the satisfaction index (null without faces)."""
        shares = {e: (self.counts[e] / self.faces if self.faces else 0.0) for e in EMOTIONS}
        return {
            "file": self.file,
            "fps": self.fps,
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "faces": self.faces,
            "counts": self.counts,
            "shares": shares,
            "satisfaction_index": satisfaction_index(self.counts),
        }


def _frames(path: Path, fps: float | None) -> Iterator[tuple[float, np.ndarray]]:
    from moodstream.ingest import open_capture, read_image, sample_capture, sample_file

    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield 0.0, read_image(path)
        return
    if fps is not None:
        yield from sample_file(path, fps)
        return
    capture = open_capture(str(path))
    try:
        native = capture.get(cv2.CAP_PROP_FPS) or 25.0
        yield from sample_capture(capture, min(1000.0, native))
    finally:
        capture.release()


def annotate(frame: np.ndarray, faces: tuple[ClassifiedFace, ...]) -> np.ndarray:
    """A copy of the BGR frame with each face's box and "emotion probability" label drawn."""
    out = frame.copy()
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        color = EMOTION_COLORS_BGR[face.emotion]
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        label = f"{face.emotion} {max(face.probs):.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), color, -1)
        cv2.putText(
            out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
    return out


class _Annotator:
    """Writes annotated frames to a video (or one image); opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            if not cv2.imwrite(str(self.path), frame):
                raise OSError(f"cannot write {self.path}")
            return
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"cannot write video {self.path} (use an .mp4 or .avi name)")
        self.writer.write(frame)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def analyze_file(
    path: Path, fps: float | None, analyzer: Any, jpeg_quality: int, annotate_to: Path | None = None
) -> AnalysisSummary:
    """Sample ``path`` like ingest, JPEG round-trip, analyse in batches; optionally write annotations."""
    from moodstream.runtime.frame_analysis import jpeg_round_trip

    summary = AnalysisSummary(file=str(path), fps=fps)
    writer = _Annotator(annotate_to, fps or 10.0) if annotate_to else None
    batch: list[np.ndarray] = []

    def flush() -> None:
        seen = [jpeg_round_trip(f, jpeg_quality) for f in batch]
        for frame, faces in zip(batch, analyzer.analyze(seen), strict=True):
            summary.add(faces)
            if writer is not None:
                writer.write(annotate(frame, faces))
        batch.clear()

    try:
        for _stamp, frame in _frames(path, fps):
            batch.append(frame)
            if len(batch) >= BATCH_FRAMES:
                flush()
        if batch:
            flush()
    finally:
        if writer is not None:
            writer.close()
    return summary


def summary_table(summary: AnalysisSummary) -> Table:
    """Per-emotion counts and shares, then faces, frames and the satisfaction index."""
    data = summary.as_json()
    table = Table(
        title=f"{summary.file}: {summary.frames} frames, {summary.faces} faces", title_justify="left"
    )
    table.add_column("emotion")
    table.add_column("faces", justify="right")
    table.add_column("share", justify="right")
    for emotion in EMOTIONS:
        table.add_row(emotion, str(summary.counts[emotion]), f"{100 * data['shares'][emotion]:.1f}%")
    index = data["satisfaction_index"]
    table.add_row("satisfaction index", "", "-" if index is None else f"{index:+.3f}", style="bold")
    return table


def analyze(
    file: Annotated[
        Path, typer.Argument(help="A video (any format OpenCV/FFmpeg reads, GIF too) or an image.")
    ],
    fps: Annotated[
        float | None,
        typer.Option("--fps", min=0.01, max=1000, help="Frames sampled per second (default: all)."),
    ] = None,
    annotate_to: Annotated[
        Path | None, typer.Option("--annotate", help="Write an annotated video (.mp4) or image here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    model: Annotated[str, typer.Option("--model", help="FER model: default, a name or a path.")] = "default",
    max_input_width: Annotated[
        int | None, typer.Option("--max-input-width", help="Downscale wider frames before detection.")
    ] = None,
    jpeg_quality: Annotated[
        int, typer.Option("--jpeg-quality", min=10, max=100, help="JPEG quality, as the pipeline's ingest.")
    ] = 85,
) -> None:
    """Count the emotions of the faces in a video or image, offline (no servers), like the pipeline does."""
    from moodstream.ingest import SourceError
    from moodstream.runtime.models import AnalysisConfig, build_analyzer

    if not file.is_file():
        console.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error line says it better
    try:
        analyzer = build_analyzer(AnalysisConfig(model=model, max_input_width=max_input_width))
        summary = analyze_file(file, fps, analyzer, jpeg_quality, annotate_to)
    except (SourceError, OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if summary.frames == 0:
        console.print(f"[red]error:[/red] no frame could be read from {file}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        out_console.print(summary_table(summary))
        if annotate_to:
            out_console.print(f"annotated output: {annotate_to}")


def register(app: typer.Typer) -> None:
    """Add ``analyze``."""
    app.command("analyze")(analyze)
