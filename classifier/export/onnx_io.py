"""Export a torch classifier to ONNX with a dynamic batch axis (export-time only, ``train`` extra)."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

ONNX_OPSET = 17


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, output_name: str) -> None:
    """Write ``module`` (eval mode) as ONNX: input "input" shaped like ``example`` with a dynamic batch axis.

    The file is checked with ``onnx.checker`` after writing.
    """
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["input"],
            output_names=[output_name],
            dynamic_axes={"input": {0: "batch"}, output_name: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
