"""Registry of the FER models shipped in ``classifier/models``: model name -> manifest file.

``resolve_manifest_path`` accepts a registry name ("default" included), a path to a manifest ``.json``,
or a path to an ``.onnx`` file with its manifest beside it (same stem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from moodstream.classifier.errors import ModelFileError

MODELS_DIR: Final[Path] = Path(__file__).resolve().parent / "models"

SHIPPED_MODELS: Final[dict[str, str]] = {
    "vgg-fer-v4-int8": "vgg-fer-v4-int8.json",
    "vgg-fer-v4": "vgg-fer-v4.json",
    "vgg-fer-v3-int8": "vgg-fer-v3-int8.json",
    "vgg-fer-v3": "vgg-fer-v3.json",
    "vgg-fer-v2-int8": "vgg-fer-v2-int8.json",
    "vgg-fer-v2": "vgg-fer-v2.json",
    "vgg-fer": "vgg-fer.json",
    "mini-xception-fer": "mini-xception-fer.json",
}
"""Every shipped model by name, with its manifest file in MODELS_DIR."""

DEFAULT_MODEL: Final[str] = "vgg-fer-v2-int8"
"""What "default" resolves to: the best shipped model on FER-2013 PublicTest within the cost target
(``vgg-fer-v2`` quantised to INT8: same accuracy, about a quarter of the CPU per face; see MODELS.md)."""


def model_names() -> list[str]:
    """Names accepted by ``resolve_manifest_path`` besides paths: "default" and every shipped model."""
    return ["default", *SHIPPED_MODELS]


def resolve_manifest_path(model: str) -> Path:
    """Registry name or file path -> the manifest JSON path. Raises ModelFileError when nothing matches."""
    name = DEFAULT_MODEL if model == "default" else model
    if name in SHIPPED_MODELS:
        return MODELS_DIR / SHIPPED_MODELS[name]
    path = Path(model).expanduser()
    if path.suffix == ".onnx":
        path = path.with_suffix(".json")
    if path.suffix == ".json" and path.is_file():
        return path
    raise ModelFileError(
        f"unknown model {model!r}: expected one of {model_names()} or a path to a model .json/.onnx "
        f"with its manifest beside it"
    )
