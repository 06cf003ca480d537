"""`moodstream eval`: accuracy, per-class recall and confusion matrix of a FER model on a folder split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from moodstream.classifier import (
    ClassifierConfig,
    ClassifierError,
    DatasetError,
    EmotionClassifier,
    EvaluationResult,
    evaluate_folder,
    write_confusion_png,
)
from moodstream.schemas.labels import EMOTIONS


def _print_result(console: Console, result: EvaluationResult) -> None:
    console.print(f"model {result.model} on {result.dataset}: {result.samples} images")
    console.print(f"accuracy {result.accuracy:.4f}")
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
) -> None:
    """Evaluate a FER model on a FER-2013-style folder split."""
    console = Console()
    try:
        classifier = EmotionClassifier(ClassifierConfig(model=model, batch_size=batch_size))
        result = evaluate_folder(classifier, dataset_dir)
        _print_result(console, result)
        if json_out is not None:
            json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        if confusion_png is not None:
            write_confusion_png(result, confusion_png)
    except (ClassifierError, DatasetError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def register(app: typer.Typer) -> None:
    """Add `moodstream eval` to app."""
    app.command("eval")(eval_command)
