"""Command line of VGG-FER training: ``python -m moodstream.classifier.training train|export|recover ...``.

train:  every TrainConfig field is a flag (``--data``, ``--out-dir``, ``--width``, ``--epochs``, ...), plus
        ``--resume`` to continue from ``OUT_DIR/last.pt``.
export: ``python -m moodstream.classifier.training export OUT_DIR/best.pt classifier/models --name vgg-fer-v2
        [--calibrate /tmp/fer2013/validation] [--no-flip-tta] [--fusion logits]``; several checkpoints
        make one ensemble graph.
recover: ``python -m moodstream.classifier.training recover classifier/models/vgg-fer-v2.onnx /tmp/v2.pt
        --data /tmp/fer2013 --out-dir /tmp/run --width 32 --standardize`` rebuilds a checkpoint (best.pt
        layout) from a shipped graph, so that ``train --init-from /tmp/v2.pt`` continues from it.
average: ``python -m moodstream.classifier.training average RUN/epoch_0*.pt --out RUN/averaged.pt
        --data /tmp/fer2013`` averages the weights of a run's snapshots (``--keep-snapshots``) and
        re-measures their batch norms on training faces; export reads the result like best.pt.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from moodstream.classifier.training.config import FUSIONS, TrainConfig


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (booleans as --x/--no-x), default None = the field's default."""
    for name, field in TrainConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        annotation = field.annotation
        if isinstance(annotation, types.UnionType):  # "X | None": the flag takes an X
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, help=field.description
            )
        elif typing.get_origin(annotation) is typing.Literal:
            parser.add_argument(flag, dest=name, choices=typing.get_args(annotation), help=field.description)
        else:
            parser.add_argument(flag, dest=name, type=annotation, help=field.description)  # type: ignore[arg-type]


def config_from_flags(
    flags: dict[str, typing.Any],
    parser: argparse.ArgumentParser,
    defaults: dict[str, typing.Any] | None = None,
) -> TrainConfig:
    """The TrainConfig of the parsed config flags (None = not given) over ``defaults``; a missing or
    invalid flag is a usage error of ``parser`` (exit 2) naming each flag and what it expects."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return TrainConfig(**{**(defaults or {}), **given})
    except ValidationError as error:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in error.errors()
        )
        parser.error(f"invalid training flags: {problems}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run training or export; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m moodstream.classifier.training", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train (or resume) a VGG-FER model")
    add_config_flags(train)
    train.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt when it exists")
    export = commands.add_parser("export", help="export a checkpoint to ONNX + manifest")
    export.add_argument(
        "checkpoint",
        type=Path,
        nargs="+",
        help="best.pt written by train (several: an ensemble in one graph)",
    )
    export.add_argument("out_dir", type=Path, help="folder for NAME.onnx and NAME.json")
    export.add_argument("--name", default="vgg-fer", help="model name (file stem)")
    export.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        help="folder split (<emotion>/*.jpg, e.g. fer2013/validation) to fit the temperature on",
    )
    export.add_argument(
        "--calibration-label",
        default=None,
        help="how the manifest names the calibration split, e.g. 'FER-2013 PublicTest'",
    )
    export.add_argument(
        "--flip-tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the run's horizontal-flip averaging in the exported graph",
    )
    export.add_argument(
        "--fusion",
        choices=FUSIONS,
        default="probabilities",
        help="combine views (face, mirror) and networks by the mean of their probabilities (default) or "
        "by the softmax of the mean of their logits",
    )
    recover = commands.add_parser("recover", help="rebuild a checkpoint from a shipped VGG-FER ONNX graph")
    recover.add_argument("graph", type=Path, help="the .onnx file (batch norms folded into its convolutions)")
    recover.add_argument("out", type=Path, help="checkpoint to write (best.pt layout)")
    recover.add_argument(
        "--faces", type=int, default=4096, help="training faces the batch-norm statistics are measured on"
    )
    add_config_flags(recover)
    average = commands.add_parser("average", help="average the weights of a run's epoch snapshots")
    average.add_argument("snapshots", type=Path, nargs="+", help="epoch_NNN.pt files of one run (2 or more)")
    average.add_argument("--out", type=Path, required=True, help="checkpoint to write (best.pt layout)")
    average.add_argument("--data", type=Path, required=True, help="fer2013.csv or the FER-2013 folder root")
    average.add_argument(
        "--faces", type=int, default=8192, help="training faces the batch-norm statistics are measured on"
    )
    average.add_argument("--seed", type=int, default=0, help="seed of the random choice of faces")
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if command == "recover":
        return _recover(args, recover)
    if command == "average":
        return _average(args)
    if command == "export":
        from moodstream.classifier.training.export import export_checkpoint

        manifest = export_checkpoint(
            args["checkpoint"],
            args["out_dir"],
            args["name"],
            args["calibrate"],
            args["flip_tta"],
            args["calibration_label"],
            args["fusion"],
        )
        print(f"wrote {args['out_dir'] / manifest.file} sha256={manifest.sha256}")
        if manifest.calibration is not None:
            print(manifest.calibration.model_dump_json())
        return 0
    from moodstream.classifier.training.trainer import Trainer

    resume = args.pop("resume")
    config = config_from_flags(args, train)
    Trainer(config, resume=resume).run()
    return 0


def _training_faces(data: Path, count: int, seed: int) -> np.ndarray:
    """``count`` training faces of ``data`` chosen at random with ``seed`` (all when fewer), in file
    order: (N, 48, 48) uint8, what batch norms are measured on. ``count`` < 1 is a usage error."""
    from moodstream.classifier.training.data import load_fer

    if count < 1:
        raise SystemExit(f"--faces must be at least 1, got {count}")

    images, _ = load_fer(data, "train")
    chosen = np.random.default_rng(seed).choice(len(images), min(count, len(images)), replace=False)
    return images[np.sort(chosen)]


def _recover(args: dict[str, typing.Any], parser: argparse.ArgumentParser) -> int:
    """The recover command: checkpoint of ``args['graph']`` built as the config flags describe."""
    from moodstream.classifier.training.recover import recover_checkpoint

    graph, out, faces = args.pop("graph"), args.pop("out"), args.pop("faces")
    config = config_from_flags(args, parser)
    recover_checkpoint(graph, config, _training_faces(Path(config.data), faces, config.seed), out)
    print(f"wrote {out} from {graph}")
    return 0


def _average(args: dict[str, typing.Any]) -> int:
    """The average command: the mean of ``args['snapshots']``, batch norms re-measured, to ``args['out']``."""
    from moodstream.classifier.training.average import average_snapshots

    faces = _training_faces(args["data"], args["faces"], args["seed"])
    average_snapshots(args["snapshots"], faces, args["out"])
    count = len(args["snapshots"])
    print(f"wrote {args['out']}: mean of {count} snapshots, batch norms on {len(faces)} faces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
