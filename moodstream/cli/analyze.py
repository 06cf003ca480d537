"""`moodstream analyze VIDEO_OR_IMAGE`: offline, single process, no servers.

Samples the file exactly as ingest would (same sampler, same JPEG round trip), runs the pipeline's
per-frame analysis and per-camera tracking (``moodstream.runtime.clip_analysis``) and prints the visits
first (visits, readable visits, dwell, emotion per visit, satisfaction per visit), then the faces;
``--annotate OUT`` writes the sampled frames with each face's track id and its visit's emotion (known once
the visit ended, so frames are drawn after the whole clip was analysed), faces below the quality gate
marked (a video, or an image for a single image input).
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
from rich.markup import escape
from rich.table import Table

from moodstream.runtime.clip_analysis import ClipVisits, FrameTracks
from moodstream.runtime.scene import CameraScene, blank_masks
from moodstream.schemas import defaults
from moodstream.schemas.labels import EMOTIONS, satisfaction_index
from moodstream.schemas.regions import polygon_pixels
from moodstream.schemas.tables import DWELL_BINS
from moodstream.schemas.visit_config import VisitConfig

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
    """Totals of one analysed clip: visits first (per emotion, dwell), then faces (detected, readable,
    classified votes per emotion)."""

    file: str
    fps: float | None
    clip: ClipVisits = field(default_factory=ClipVisits)
    scene: CameraScene = field(default_factory=CameraScene)

    @property
    def frames(self) -> int:
        """Frames analysed."""
        return len(self.clip.frames)

    def visit_counts(self) -> dict[str, int]:
        """Readable visits per emotion (every label present)."""
        counts = dict.fromkeys(EMOTIONS, 0)
        for visit in self.clip.visits:
            if visit.emotion is not None:
                counts[visit.emotion] += 1
        return counts

    def face_counts(self) -> dict[str, int]:
        """Classified faces (votes) per emotion (every label present)."""
        counts = dict.fromkeys(EMOTIONS, 0)
        for vote in self.clip.votes:
            counts[vote.emotion] += 1
        return counts

    def zone_counts(self) -> dict[str, dict[str, Any]]:
        """Per zone of the camera (every zone present): visits, readable visits, visits per emotion and
        summed dwell, as ``zone_visits`` counts them."""
        out: dict[str, dict[str, Any]] = {
            zone.id: {
                "visits": 0,
                "readable": 0,
                "emotions": dict.fromkeys(EMOTIONS, 0),
                "dwell_seconds_sum": 0.0,
            }
            for zone in self.scene.zones
        }
        for visit in self.clip.visits:
            if visit.zone is None or visit.zone not in out:
                continue
            row = out[visit.zone]
            row["visits"] += 1
            row["dwell_seconds_sum"] = round(row["dwell_seconds_sum"] + visit.dwell_ms / 1000, 3)
            if visit.emotion is not None:
                row["readable"] += 1
                row["emotions"][visit.emotion] += 1
        return out

    def dwell_histogram(self) -> dict[str, int]:
        """Visits per dwell bin (the columns of ``emotion_counts``)."""
        out = {name: 0 for name, _, _ in DWELL_BINS}
        for visit in self.clip.visits:
            seconds = visit.dwell_ms / 1000
            for name, low, high in DWELL_BINS:
                if seconds >= low and (high is None or seconds < high):
                    out[name] += 1
        return out

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict: visits (headline satisfaction per visit, null without a readable visit), then
        faces, then the list of visits."""
        visits = self.clip.visits
        readable = sum(1 for v in visits if v.probs is not None)
        counts = self.visit_counts()
        dwell = sum(v.dwell_ms for v in visits) / 1000
        faces = self.face_counts()
        return {
            "file": self.file,
            "fps": self.fps,
            "frames": self.frames,
            "frames_with_faces": sum(1 for f in self.clip.frames if f.boxes),
            "satisfaction_index": satisfaction_index(counts, readable),
            "visits": {
                "count": len(visits),
                "readable": readable,
                "unreadable": len(visits) - readable,
                "emotions": counts,
                "shares": {e: (counts[e] / readable if readable else 0.0) for e in EMOTIONS},
                "dwell_seconds_sum": round(dwell, 3),
                "dwell_seconds_mean": round(dwell / len(visits), 3) if visits else None,
                "dwell_histogram": self.dwell_histogram(),
                "satisfaction_index": satisfaction_index(counts, readable),
            },
            "faces": {
                "detected": self.clip.faces,
                "readable": self.clip.readable_faces,
                "classified": len(self.clip.votes),
                "emotions": faces,
                "satisfaction_index": satisfaction_index(faces),
            },
            "zones": self.zone_counts(),
            "visit_list": [
                {
                    "start_s": round(v.started_ms / 1000, 3),
                    "dwell_s": round(v.dwell_ms / 1000, 3),
                    "faces": v.faces,
                    "readable_faces": v.readable_faces,
                    "emotion": v.emotion,
                    "zone": v.zone,
                }
                for v in visits
            ],
        }


def _frames(path: Path, fps: float | None) -> Iterator[tuple[float, np.ndarray]]:
    from moodstream.ingest import check_capture_size, open_capture, read_image, sample_capture, sample_file

    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield 0.0, read_image(path)
        return
    if fps is not None:
        yield from sample_file(path, fps)
        return
    capture = open_capture(str(path))
    try:
        check_capture_size(capture, str(path))
        native = capture.get(cv2.CAP_PROP_FPS) or 25.0
        yield from sample_capture(capture, min(1000.0, native))
    finally:
        capture.release()


def _label(track: int, visit: Any, readable: bool) -> tuple[str, tuple[int, int, int]]:
    if track < 0 or visit is None:
        text, color = "no visit", (128, 128, 128)
    elif visit.emotion is None:
        text, color = f"#{track} unreadable", (128, 128, 128)
    else:
        text, color = f"#{track} {visit.emotion}", EMOTION_COLORS_BGR[visit.emotion]
    return (text if readable else f"{text} (below gate)"), color


MASK_COLOR_BGR = (60, 60, 60)
ZONE_COLOR_BGR = (230, 160, 0)


def draw_scene(frame: np.ndarray, scene: CameraScene) -> np.ndarray:
    """The frame (a copy) with the camera's masks filled dark and hatched, labelled "masked", and its
    zones outlined with their ids."""
    out = blank_masks(frame, scene.masks)
    if out is frame:
        out = frame.copy()
    height, width = out.shape[:2]
    for mask in scene.masks:
        points = polygon_pixels(mask, (width, height))
        cv2.fillPoly(out, [points], MASK_COLOR_BGR)
        cv2.polylines(out, [points], True, (0, 0, 200), 2, cv2.LINE_AA)
        x, y = (int(v) for v in points.min(axis=0))
        cv2.putText(
            out, "masked", (x + 4, y + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 200), 1, cv2.LINE_AA
        )
    for zone in scene.zones:
        points = polygon_pixels(zone.polygon, (width, height))
        cv2.polylines(out, [points], True, ZONE_COLOR_BGR, 2, cv2.LINE_AA)
        x, y = (int(v) for v in points.min(axis=0))
        cv2.putText(
            out,
            f"zone {zone.id}",
            (x + 4, y + 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            ZONE_COLOR_BGR,
            1,
            cv2.LINE_AA,
        )
    return out


def annotate(
    frame: np.ndarray, tracks: FrameTracks, clip: ClipVisits, scene: CameraScene | None = None
) -> np.ndarray:
    """A copy of the BGR frame with the camera's masks and zones, and each face's box, track id and its
    visit's emotion; faces below the quality gate drawn thin and marked "(below gate)"."""
    out = draw_scene(frame, scene) if scene is not None else frame.copy()
    for box, track, readable in zip(tracks.boxes, tracks.track_ids, tracks.readable, strict=True):
        x1, y1, x2, y2 = (round(v) for v in box)
        label, color = _label(track, clip.track_visits.get(track), readable)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2 if readable else 1)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), color, -1)
        cv2.putText(
            out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
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
    path: Path,
    fps: float | None,
    analyzer: Any,
    jpeg_quality: int,
    annotate_to: Path | None = None,
    config: VisitConfig | None = None,
    scene: CameraScene | None = None,
) -> AnalysisSummary:
    """Sample ``path`` like ingest, JPEG round-trip, detect, track and classify visits like the pipeline;
    optionally write annotated frames (a second pass over the file, once every visit's emotion is known)."""
    from moodstream.runtime.clip_analysis import analyze_clip

    config = config or VisitConfig()
    if path.suffix.lower() in IMAGE_SUFFIXES:  # one instant: every face is a visit
        config = config.model_copy(update={"tracker": config.tracker.model_copy(update={"min_frames": 1})})
    scene = scene or CameraScene()
    clip = analyze_clip(_frames(path, fps), analyzer, config, jpeg_quality, BATCH_FRAMES, scene)
    if annotate_to is not None:
        writer = _Annotator(annotate_to, fps or 10.0)
        try:
            for (_stamp, frame), tracks in zip(_frames(path, fps), clip.frames, strict=False):
                writer.write(annotate(frame, tracks, clip, scene))
        finally:
            writer.close()
    return AnalysisSummary(file=str(path), fps=fps, clip=clip, scene=scene)


def summary_tables(summary: AnalysisSummary) -> list[Table]:
    """Visits (per emotion with shares, dwell, satisfaction per visit), then faces."""
    data = summary.as_json()
    visits, faces = data["visits"], data["faces"]
    mean = visits["dwell_seconds_mean"]
    title = (
        f"{summary.file}: {summary.frames} frames, {visits['count']} visits "
        f"({visits['readable']} readable), mean dwell {'-' if mean is None else f'{mean:.1f} s'}"
    )
    table = Table(title=title, title_justify="left")
    for column, justify in (("emotion", "left"), ("visits", "right"), ("share", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for emotion in EMOTIONS:
        table.add_row(emotion, str(visits["emotions"][emotion]), f"{100 * visits['shares'][emotion]:.1f}%")
    table.add_row("unreadable", str(visits["unreadable"]), "", style="dim")
    table.add_row("satisfaction per visit", "", _index(visits["satisfaction_index"]), style="bold")
    dwell = Table(title="dwell", title_justify="left")
    for name, _, _ in DWELL_BINS:
        dwell.add_column(name.removeprefix("dwell_"), justify="right")
    dwell.add_row(*(str(visits["dwell_histogram"][name]) for name, _, _ in DWELL_BINS))
    face_table = Table(
        title=f"faces (detections, not people): {faces['detected']} detected, {faces['readable']} passed "
        f"the quality gate, {faces['classified']} classified",
        title_justify="left",
    )
    for emotion in EMOTIONS:
        face_table.add_column(emotion, justify="right")
    face_table.add_column("satisfaction per face", justify="right")
    face_table.add_row(*(str(faces["emotions"][e]) for e in EMOTIONS), _index(faces["satisfaction_index"]))
    return [table, dwell, face_table]


def _index(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _visit_config(config: Path | None, camera: str | None) -> tuple[VisitConfig, CameraScene]:
    """Visit settings and scene (masks, zones, detection) of ``camera`` (store/camera) in ``config``, or
    the defaults (no mask, no zone)."""
    from moodstream.schemas.registry import UnknownCameraError, load_registry

    if config is None:
        if camera is not None:
            raise ValueError("--camera needs -c stores.yaml")
        return VisitConfig(), CameraScene()
    registry = load_registry(config)
    if camera is None:
        return registry.pipeline.visits, CameraScene()
    store_id, _, camera_id = camera.partition("/")
    try:
        return registry.visit_config(store_id, camera_id), CameraScene.of(
            registry.camera(store_id, camera_id), store_id
        )
    except UnknownCameraError as exc:
        raise ValueError(f"--camera {camera}: {exc} (expected STORE/CAMERA of {config})") from None


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
    ] = defaults.JPEG_QUALITY,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="stores.yaml: use its visit settings (pipeline.visits)."),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option(
            "--camera",
            help="STORE/CAMERA of -c whose settings to use: visits (gate, tracker), masks, zones, detection.",
        ),
    ] = None,
) -> None:
    """Count the visits in a video or image and their emotions, offline (no servers), like the pipeline."""
    from moodstream.ingest import SourceError, opencv_message, read_image
    from moodstream.runtime.models import AnalysisConfig, build_analyzer
    from moodstream.schemas.registry import RegistryError

    if not file.is_file():
        console.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error line says it better
    try:
        if file.suffix.lower() in IMAGE_SUFFIXES:
            read_image(file)  # size checked before anything is decoded or any model loaded
        settings, scene = _visit_config(config, camera)
        # one process here, so ONNX Runtime may use every core (0), unlike the pipeline's model processes
        models = AnalysisConfig(model=model, max_input_width=max_input_width, intra_op_threads=0)
        analyzer = build_analyzer(models)
        summary = analyze_file(file, fps, analyzer, jpeg_quality, annotate_to, settings, scene)
    except (SourceError, OSError, ValueError, RegistryError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except cv2.error as exc:
        message = escape(f"{file}: {opencv_message(exc)}")
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if summary.frames == 0:
        console.print(f"[red]error:[/red] no frame could be read from {file}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        for table in summary_tables(summary):
            out_console.print(table)
        if annotate_to:
            out_console.print(f"annotated output: {annotate_to}")


def register(app: typer.Typer) -> None:
    """Add ``analyze``."""
    app.command("analyze")(analyze)
