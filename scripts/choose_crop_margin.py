"""Choose a FER model's crop margin on the in-the-wild check set, holding one clip out (maintainer tool).

The aligned crop's framing decides how a model reads real camera faces (MODELS.md, "Crop framing"). For
each margin of a grid this aligns the check set's faces (classifier/eval/wild_labels.json, frames from
../shared/data) with ``align_face(margin=...)``, classifies them, and prints the accuracy on the files
that choose and on the held-out file, with the held-out file's predicted emotions. The chosen margin is
the best on the choosing files (the smaller one on a tie); the held-out file (by default the issue's
walking-and-pause clip) is measured, never used to choose. ``--write`` stores the choice in the model's
manifest (``input.crop_margin``) with its in-the-wild accuracy entry; the ONNX file is untouched.

    python scripts/choose_crop_margin.py vgg-fer-v2-int8 --write
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

import numpy as np

from moodstream.classifier import ClassifierConfig, EmotionClassifier, load_manifest, resolve_manifest_path
from moodstream.classifier.manifest import Accuracy, with_accuracy, write_manifest
from moodstream.classifier.wild import SHARED_DATA, load_wild_labels, wild_crops, wild_files
from moodstream.cli.evaluate import wild_aligner
from moodstream.schemas.labels import EMOTIONS

WILD_DATASET = "moodstream in-the-wild check set (classifier/eval/wild_labels.json, pipeline crops)"
DEFAULT_GRID = tuple(round(0.025 * i, 3) for i in range(13))  # 0 ... 0.3


@dataclass(frozen=True)
class MarginScore:
    """One margin's accuracy on the choosing files, on the held-out file, and on all faces."""

    margin: float
    choosing: float
    held_out: float
    overall: float
    held_out_predicted: dict[str, int]


def score_margins(model: str, margins: tuple[float, ...], held_out: str) -> list[MarginScore]:
    """Classify the check set at each margin; ``held_out`` is a substring of the held-out file's name."""
    labels = load_wild_labels()
    files = np.array(wild_files(labels))
    out = np.array([held_out in f for f in files])
    if not out.any() or out.all():
        raise SystemExit(f"--held-out {held_out!r}: matches {int(out.sum())} of {len(files)} faces")
    classifier = EmotionClassifier(ClassifierConfig(model=model, batch_size=64, intra_op_threads=1))
    scores = []
    for margin in margins:
        size, color = classifier.input_size, classifier.color
        crops, truth = wild_crops(labels, SHARED_DATA, wild_aligner(margin), size, color)
        guess = classifier.predict(crops).argmax(axis=1)
        right = guess == truth
        counts = Counter(EMOTIONS[g] for g in guess[out])
        choosing, held, overall = float(right[~out].mean()), float(right[out].mean()), float(right.mean())
        scores.append(MarginScore(margin, choosing, held, overall, counts))
    return scores


def choose(scores: list[MarginScore]) -> MarginScore:
    """The best margin on the choosing files; the smallest of equals."""
    return max(scores, key=lambda s: (round(s.choosing, 6), -s.margin))


def write_choice(model: str, chosen: MarginScore, samples: int) -> None:
    """Store ``chosen.margin`` and the check set's accuracy at it in ``model``'s manifest."""
    path = resolve_manifest_path(model)
    manifest = load_manifest(path)
    entry = Accuracy(dataset=WILD_DATASET, accuracy=round(chosen.overall, 4), samples=samples)
    spec = manifest.input.model_copy(update={"crop_margin": chosen.margin})
    write_manifest(with_accuracy(manifest.model_copy(update={"input": spec}), entry), path)


def main() -> None:
    """Command line: MODEL [--margins 0,0.05,...] [--held-out NAME] [--write]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a shipped model name or a manifest path")
    parser.add_argument("--margins", default=",".join(f"{m:g}" for m in DEFAULT_GRID), help="comma-separated")
    parser.add_argument("--held-out", default="walking-and-pause", help="substring of the held-out file")
    parser.add_argument("--write", action="store_true", help="store the chosen margin in the manifest")
    args = parser.parse_args()
    margins = tuple(float(m) for m in args.margins.split(","))
    scores = score_margins(args.model, margins, args.held_out)
    for s in scores:
        shares = " ".join(f"{k} {v}" for k, v in sorted(s.held_out_predicted.items(), key=lambda kv: -kv[1]))
        print(
            f"margin {s.margin:.3f}: choosing files {100 * s.choosing:.1f} %, "
            f"held out {100 * s.held_out:.1f} % ({shares}), all {100 * s.overall:.1f} %"
        )
    chosen = choose(scores)
    print(f"chosen: margin {chosen.margin:g} (all faces {100 * chosen.overall:.1f} %)")
    if args.write:
        write_choice(args.model, chosen, len(load_wild_labels().faces))
        print(f"written to {resolve_manifest_path(args.model)}")


if __name__ == "__main__":
    main()
