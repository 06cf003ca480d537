"""Static INT8 quantisation of a shipped FER graph with ONNX Runtime (export-time tool, no retraining).

Reproduce the shipped ``vgg-fer-v2-int8`` from ``vgg-fer-v2``::

    python -m moodstream.classifier.export.quantize vgg-fer-v2 classifier/models --name vgg-fer-v2-int8 \\
        --calibration-data /tmp/fer2013/train --faces 600 \\
        --refit-temperature /tmp/fer2013/validation \\
        --calibration-label "FER-2013 PublicTest (validation/ of the msambare JPEG copy)"

Only the network's trunk is quantised: its Conv, Relu, MaxPool, Flatten and Gemm nodes (weights per
output channel, int8 symmetric; activations uint8 with ranges from min/max over ``--faces`` faces drawn
at random from a FER-2013 *training* folder, never the split the model is evaluated on). Everything
else stays float32 and exact: the mirror image of the flip averaging, the per-crop standardisation, the
division by the temperature, the softmax and the average of the two views. With ``--refit-temperature``
the temperature is fitted again on the quantised graph's own logits (same objective as the float
export) and written into the graph, its metadata and the manifest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from moodstream.classifier.calibration import (
    expected_calibration_error,
    fit_temperature,
    objective_wording,
    tempered_probabilities,
)
from moodstream.classifier.dataset import load_split, read_image, scan_split
from moodstream.classifier.errors import DatasetError
from moodstream.classifier.export.graph_edit import graph_temperature, logit_views, set_temperature
from moodstream.classifier.manifest import (
    Calibration,
    InputSpec,
    ModelManifest,
    load_manifest,
    write_manifest,
)
from moodstream.classifier.preprocess import crops_to_tensor
from moodstream.classifier.registry import resolve_manifest_path
from moodstream.common.checksums import file_sha256

TRUNK_OP_TYPES = frozenset({"Conv", "Relu", "MaxPool", "Flatten", "Gemm"})
"""Operators of the network trunk that are quantised; every other node stays float32."""
CALIBRATION_BATCH = 32
"""Faces per calibration run of the float graph."""


class QuantizeOptions(BaseModel):
    """How the trunk is quantised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faces: int = Field(
        default=600, ge=7, le=30000, description="Training faces whose activations set ranges."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the random choice of faces.")
    quant_format: Literal["qdq", "qoperator"] = Field(
        default="qdq", description="QuantizeLinear/DequantizeLinear pairs or QLinear* operators."
    )
    per_channel: bool = Field(default=True, description="One weight scale per output channel.")
    calibrate_method: Literal["minmax", "entropy", "percentile"] = Field(
        default="minmax", description="How activation ranges are chosen from the calibration faces."
    )
    float_first_conv: bool = Field(
        default=True,
        description="Keep the first convolution of each network (1 input channel, on the standardised "
        "crop) in float32.",
    )
    float_last_gemm: bool = Field(default=False, description="Keep the last Gemm (the logits) in float32.")

    @model_validator(mode="after")
    def _histograms_need_equal_batches(self) -> QuantizeOptions:
        if self.calibrate_method != "minmax" and self.faces % CALIBRATION_BATCH:
            raise ValueError(
                f"calibrate_method {self.calibrate_method!r} needs faces in whole batches of "
                f"{CALIBRATION_BATCH}; got faces={self.faces}"
            )
        return self


def sample_faces(split_dir: Path, count: int, seed: int, spec: InputSpec) -> np.ndarray:
    """``count`` faces drawn without replacement from ``split_dir/<emotion>/*``, as the graph's input.

    Returns float32 model input ((N, C, H, W) or (N, H, W, C) per ``spec``). DatasetError when the folder
    holds fewer images than ``count`` (or none, or is not a split folder).
    """
    split = scan_split(split_dir)
    if len(split) < count:
        raise DatasetError(f"calibration folder {split_dir} holds {len(split)} images; {count} requested")
    chosen = np.sort(np.random.default_rng(seed).choice(len(split), size=count, replace=False))
    crops = [read_image(split.files[i], (spec.width, spec.height), spec.color) for i in chosen]
    return crops_to_tensor(crops, spec)


class _FaceBatches(CalibrationDataReader):  # type: ignore[misc]
    """Feeds the calibration faces to ONNX Runtime's calibrator in batches."""

    def __init__(self, input_name: str, inputs: np.ndarray) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            {input_name: inputs[i : i + CALIBRATION_BATCH]} for i in range(0, len(inputs), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch as {input name: tensor}, or None when all faces were given."""
        return next(self._batches, None)


def trunk_nodes(model: onnx.ModelProto, options: QuantizeOptions) -> list[str]:
    """Names of the nodes to quantise: TRUNK_OP_TYPES in graph order, less the ends the options keep float."""
    nodes = [n for n in model.graph.node if n.op_type in TRUNK_OP_TYPES]
    convs = [n for n in nodes if n.op_type == "Conv"]
    gemms = [n for n in nodes if n.op_type == "Gemm"]
    if not convs:
        raise ValueError("the graph has no Conv node: nothing to quantise")
    dropped = set()
    if options.float_first_conv:
        dropped.add(convs[0].name)
        dropped.update(n.name for n in convs if _input_channels(model, n) == 1)  # each member's first
    if options.float_last_gemm and gemms:
        dropped.add(gemms[-1].name)
    unnamed = [n.op_type for n in nodes if not n.name]
    if unnamed:
        raise ValueError(f"the graph has unnamed {unnamed[0]} node(s); node names are needed to choose them")
    return [n.name for n in nodes if n.name not in dropped]


def _input_channels(model: onnx.ModelProto, conv: onnx.NodeProto) -> int | None:
    """Input channels of a Conv node from its weight initializer (None when the weight is not one)."""
    for tensor in model.graph.initializer:
        if tensor.name == conv.input[1] and len(tensor.dims) == 4:
            return int(tensor.dims[1])
    return None


def quantize_graph(source: Path, target: Path, inputs: np.ndarray, options: QuantizeOptions) -> None:
    """Write the trunk-quantised ``source`` graph to ``target``; ``inputs`` are the calibration faces.

    The source's metadata (the temperature) is carried over; the temperature itself is not changed.
    """
    model = onnx.load(str(source))
    input_name = model.graph.input[0].name
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    quantize_static(
        model,
        str(target),
        _FaceBatches(input_name, inputs),
        quant_format=QuantFormat.QDQ if options.quant_format == "qdq" else QuantFormat.QOperator,
        per_channel=options.per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=trunk_nodes(model, options),
        calibrate_method=methods[options.calibrate_method],
        extra_options={"WeightSymmetric": True},
    )
    quantised = onnx.load(str(target))
    onnx.helper.set_model_props(quantised, {p.key: p.value for p in model.metadata_props})
    onnx.save(quantised, str(target))


def refit_temperature(
    path: Path, split_dir: Path, spec: InputSpec, label: str, objective: str | None = None
) -> Calibration:
    """Fit the temperature of the graph at ``path`` on the folder split ``split_dir`` and write it there.

    Same objective as the float export (NLL of the graph output, fitted on the logits that the graph
    divides by T: per view, or already fused); ``objective`` is its wording for the manifest (None:
    worded from the number of views; ``quantize_model`` passes the source manifest's wording). Returns
    the manifest's calibration block (ECE at T = 1 and at the fitted T).
    """
    images, labels = load_split(split_dir, (spec.width, spec.height), spec.color)
    model = onnx.load(str(path))
    views = logit_views(model, crops_to_tensor(images, spec))
    temperature = round(fit_temperature(views, labels), 6)
    set_temperature(model, temperature)
    onnx.save(model, str(path))
    if objective is None:  # worded from the views: 1 a plain softmax, 2 per network (face, mirror)
        objective = objective_wording(max(len(views) // 2, 1), len(views) > 1)
    return Calibration(
        temperature=temperature,
        fitted_on=label,
        samples=len(labels),
        objective=objective,
        ece_before=round(expected_calibration_error(tempered_probabilities(views, 1.0), labels), 6),
        ece_after=round(expected_calibration_error(tempered_probabilities(views, temperature), labels), 6),
    )


def quantize_model(
    model: str,
    out_dir: Path,
    name: str,
    calibration_data: Path,
    options: QuantizeOptions,
    refit_on: Path | None = None,
    refit_label: str | None = None,
) -> ModelManifest:
    """Quantise the model ``model`` (a registry name or manifest path) into ``out_dir/NAME.onnx`` + ``.json``.

    The new manifest is the source's with the new file, checksum, architecture note and provenance; its
    accuracy entries are emptied (measure them again, ``record_accuracy``). Without ``refit_on`` the
    source's calibration block is kept (the graph keeps the source's temperature). Raises ValueError
    when the source graph has no temperature division, DatasetError for a bad folder.
    """
    source_manifest_path = resolve_manifest_path(model)
    source = load_manifest(source_manifest_path)
    source_path = source_manifest_path.parent / source.file
    inputs = sample_faces(calibration_data, options.faces, options.seed, source.input)
    target = out_dir / f"{name}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_temperature(onnx.load(str(source_path)))  # GraphEditError when the graph has no temperature
    quantize_graph(source_path, target, inputs, options)
    calibration = source.calibration
    if refit_on is not None:
        calibration = refit_temperature(
            target,
            refit_on,
            source.input,
            refit_label or str(Path(refit_on.resolve().parent.name) / refit_on.name),
            source.calibration.objective if source.calibration is not None else None,
        )
    faces_from = Path(calibration_data.resolve().parent.name) / calibration_data.name
    recipe = (
        f"ONNX Runtime static INT8, {options.quant_format.upper()}, "
        f"{'per-channel' if options.per_channel else 'per-tensor'} int8 weights, uint8 activations, "
        f"{options.calibrate_method} ranges over {options.faces} faces of {faces_from} (seed {options.seed})"
    )
    manifest = source.model_copy(
        update={
            "name": name,
            "file": target.name,
            "sha256": file_sha256(target),
            "architecture": f"{source.architecture}; {_quantised_layers(options)} in INT8",
            "source": f"{source.name} (sha256 {source.sha256[:12]}...) quantised by "
            f"classifier/export/quantize.py: {recipe}",
            "accuracy": (),
            "calibration": calibration,
        }
    )
    write_manifest(manifest, out_dir / f"{name}.json")
    return manifest


def _quantised_layers(options: QuantizeOptions) -> str:
    """Which layers run in INT8, for the manifest's architecture line."""
    convolutions = "convolutions but the first" if options.float_first_conv else "convolutions"
    dense = "dense layers but the last" if options.float_last_gemm else "dense layers"
    return f"all {convolutions} and {dense}"


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m moodstream.classifier.export.quantize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("model", help="source model: a shipped name (vgg-fer-v2) or a manifest .json")
    parser.add_argument("out_dir", type=Path, help="folder for NAME.onnx and NAME.json")
    parser.add_argument("--name", required=True, help="name (file stem) of the quantised model")
    parser.add_argument(
        "--calibration-data", type=Path, required=True, help="training split folder <emotion>/*.jpg"
    )
    parser.add_argument("--refit-temperature", type=Path, default=None, help="split to fit T on again")
    parser.add_argument("--calibration-label", default=None, help="how the manifest names that split")
    for field_name, field in QuantizeOptions.model_fields.items():
        flag = "--" + field_name.replace("_", "-")
        if field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=field.description)
        else:
            parser.add_argument(flag, help=field.description)
    args = parser.parse_args(argv)
    given = {k: getattr(args, k) for k in QuantizeOptions.model_fields if getattr(args, k) is not None}
    try:
        options = QuantizeOptions.model_validate(given)
        manifest = quantize_model(
            args.model,
            args.out_dir,
            args.name,
            args.calibration_data,
            options,
            args.refit_temperature,
            args.calibration_label,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir / manifest.file} sha256={manifest.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
