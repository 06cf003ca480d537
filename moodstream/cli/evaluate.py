"""`moodstream eval`: accuracy, macro-F1, per-class recall, ECE, confusion matrix and face-size sweep of a
FER model on a folder split, plus the in-the-wild check set (classifier/eval/wild_labels.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from moodstream.classifier import (
    SHARED_DATA,
    WILD_LABELS,
    Aligner,
    ClassifierConfig,
    ClassifierError,
    DatasetError,
    EmotionClassifier,
    EvaluationResult,
    evaluate_folder,
    evaluate_images,
    load_wild_labels,
    missing_files,
    wild_crops,
    wild_files,
    write_confusion_png,
)
from moodstream.detector import DetectorError, Face, align_face
from moodstream.schemas.labels import EMOTIONS


def parse_face_sizes(text: str) -> list[int]:
    """ "16,20,24" -> [16, 20, 24]; raises typer.BadParameter naming what was wrong and what is expected."""
    if not text.strip():
        return []
    try:
        sides = [int(part) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected comma-separated face sides in pixels, e.g. 16,24,48"
        ) from None
    bad = [s for s in sides if not 4 <= s <= 1024]
    if bad:
        raise typer.BadParameter(f"face sides {bad} outside 4..1024 pixels")
    return sides


def _print_result(console: Console, result: EvaluationResult) -> None:
    console.print(f"model {result.model} on {result.dataset}: {result.samples} images")
    console.print(
        f"accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}  ECE (15 bins) {result.ece:.4f}"
    )
    recall = Table(title="per-class recall")
    for emotion in EMOTIONS:
        recall.add_column(emotion, justify="right")
    recall.add_row(*("-" if v is None else f"{v:.3f}" for v in result.recall.values()))
    console.print(recall)
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("true \\ pred")
    for emotion in EMOTIONS:
        confusion.add_column(emotion[:8], justify="right")
    for emotion, row in zip(EMOTIONS, result.confusion.tolist(), strict=True):
        confusion.add_row(emotion, *(str(v) for v in row))
    console.print(confusion)
    if result.face_sizes:
        _print_face_sizes(console, result)


def _print_face_sizes(console: Console, result: EvaluationResult) -> None:
    table = Table(title="by face size (shrunk to S x S, brought back): accuracy and predicted shares")
    for column in ("side", "accuracy", "macro-F1", *(e[:8] for e in EMOTIONS), "max gap"):
        table.add_column(column, justify="right")
    for size in result.face_sizes:
        shares = (f"{100 * v:.1f}%" for v in size.predicted_shares.values())
        table.add_row(
            str(size.side),
            f"{size.accuracy:.4f}",
            f"{size.macro_f1:.4f}",
            *shares,
            f"{100 * size.largest_share_gap:.1f}",
        )
    table.add_row("true", "", "", *(f"{100 * v:.1f}%" for v in result.true_shares.values()), "")
    console.print(table)


def wild_aligner(margin: float) -> Aligner:
    """``align_face`` at ``margin`` in the check set's aligner signature: (frame H x W x 3 BGR uint8,
    landmarks 5 x 2 float, (width, height), colour) in, the crop the pipeline would send out."""

    def align(frame: np.ndarray, landmarks: np.ndarray, size: tuple[int, int], color: str) -> np.ndarray:
        face = Face(box=(0.0, 0.0, 1.0, 1.0), score=1.0, landmarks=landmarks.astype(np.float32))
        return align_face(frame, face, size=size, color=color, margin=margin)  # type: ignore[arg-type]

    return align


def evaluate_wild(
    classifier: EmotionClassifier, labels_path: Path, shared_data: Path, margin: float
) -> tuple[EvaluationResult | None, str, dict[str, Any]]:
    """The check set evaluated as the pipeline crops it, or (None, why it was skipped); and per file
    (clip or photo) its faces' true and predicted emotions counted (JSON ``in_the_wild.by_file``)."""
    labels = load_wild_labels(labels_path)
    absent = missing_files(labels, shared_data)
    if absent:
        why = f"{len(absent)} file(s) not under {shared_data} ({absent[0]}, ...)"
        return None, f"in-the-wild check set skipped: {why}", {}
    crops, targets = wild_crops(
        labels,
        shared_data,
        wild_aligner(margin),
        classifier.input_size,
        classifier.color,
    )
    name = (
        f"in-the-wild check set ({labels_path.name}, {len(targets)} faces labelled by eye, "
        f"crop margin {margin:g})"
    )
    predicted = classifier.predict(crops).argmax(axis=1)
    by_file: dict[str, Any] = {}
    for file, truth, guess in zip(wild_files(labels), targets, predicted, strict=True):
        entry = by_file.setdefault(file, {"faces": 0, "true": {}, "predicted": {}})
        entry["faces"] += 1
        entry["true"][EMOTIONS[truth]] = entry["true"].get(EMOTIONS[truth], 0) + 1
        entry["predicted"][EMOTIONS[guess]] = entry["predicted"].get(EMOTIONS[guess], 0) + 1
    return evaluate_images(classifier, crops, targets, name), "", by_file


def eval_command(
    dataset_dir: Annotated[
        Path, typer.Argument(help="A split folder: <emotion>/*.jpg (e.g. fer2013/validation).")
    ],
    model: Annotated[
        str, typer.Option("--model", help="'default', a shipped model name, or a model .json/.onnx.")
    ] = ("default"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    confusion_png: Annotated[
        Path | None, typer.Option("--confusion-png", help="Save the confusion matrix as a PNG here.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Crops per ONNX Runtime call.", min=1, max=4096)] = 256,
    face_sizes: Annotated[
        str,
        typer.Option(
            "--face-sizes",
            help="Comma-separated face sides (px), e.g. 16,20,24,32,40,48: each face is shrunk to S x S "
            "(area) and brought back to the model input (bilinear); accuracy and predicted shares per side.",
        ),
    ] = "",
    wild: Annotated[
        bool, typer.Option("--wild/--no-wild", help="Also evaluate the in-the-wild check set.")
    ] = True,
    wild_labels: Annotated[Path, typer.Option(help="Labels of the in-the-wild check set.")] = WILD_LABELS,
    shared_data: Annotated[
        Path, typer.Option(help="Folder holding the check set's videos and photos (../shared/data).")
    ] = SHARED_DATA,
    crop_margin: Annotated[
        float | None,
        typer.Option(
            help="Context around wild faces when aligning (the pipeline's crop_margin); default: the "
            "model's own (its manifest's input.crop_margin).",
            min=0.0,
            max=1.0,
        ),
    ] = None,
) -> None:
    """Evaluate a FER model on a FER-2013-style folder split (and on the in-the-wild check set)."""
    console = Console()
    sides = parse_face_sizes(face_sizes)
    try:
        classifier = EmotionClassifier(ClassifierConfig(model=model, batch_size=batch_size))
        result = evaluate_folder(classifier, dataset_dir, face_sizes=sides)
        _print_result(console, result)
        report: dict[str, Any] = result.to_json()
        if wild:
            margin = classifier.crop_margin if crop_margin is None else crop_margin
            wild_result, skipped, by_file = evaluate_wild(classifier, wild_labels, shared_data, margin)
            if wild_result is None:
                console.print(skipped)
                report["in_the_wild"] = {"skipped": skipped}
            else:
                _print_result(console, wild_result)
                report["in_the_wild"] = {**wild_result.to_json(), "crop_margin": margin, "by_file": by_file}
        if json_out is not None:
            json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if confusion_png is not None:
            write_confusion_png(result, confusion_png)
    except (ClassifierError, DatasetError, DetectorError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def register(app: typer.Typer) -> None:
    """Add `moodstream eval` to app."""
    app.command("eval")(eval_command)
