"""Measure a model on a folder split and record the accuracy in its manifest (maintainer tool).

    python -m moodstream.classifier.export.record_accuracy /tmp/fer2013/validation \\
        --model mini-xception-fer \\
        --dataset "FER-2013 PublicTest (msambare JPEG copy)"

An existing entry with the same dataset label is replaced. The ONNX file (and its sha256) is untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from moodstream.classifier.evaluation import evaluate_folder
from moodstream.classifier.manifest import Accuracy, load_manifest, with_accuracy, write_manifest
from moodstream.classifier.registry import resolve_manifest_path
from moodstream.classifier.runner import ClassifierConfig, EmotionClassifier


def record(dataset_dir: Path, model: str, dataset_label: str) -> Accuracy:
    """Evaluate ``model`` on ``dataset_dir`` and store the result in its manifest; returns it."""
    manifest_path = resolve_manifest_path(model)
    result = evaluate_folder(EmotionClassifier(ClassifierConfig(model=model, batch_size=256)), dataset_dir)
    entry = Accuracy(dataset=dataset_label, accuracy=round(result.accuracy, 4), samples=result.samples)
    write_manifest(with_accuracy(load_manifest(manifest_path), entry), manifest_path)
    return entry


def main() -> None:
    """Command line: DATASET_DIR --model NAME --dataset LABEL."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--model", default="default")
    parser.add_argument("--dataset", required=True, help="label of the split, stored in the manifest")
    args = parser.parse_args()
    entry = record(args.dataset_dir, args.model, args.dataset)
    print(f"{args.model}: {entry.dataset}: accuracy {entry.accuracy:.4f} on {entry.samples} images")


if __name__ == "__main__":
    main()
