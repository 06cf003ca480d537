"""Edits of an exported FER probability graph: its temperature and its logits (export-time, ``onnx``).

The VGG graphs end in ``Softmax(Div(logits, T))`` (then, with flip averaging, a mean over the face and
its mirror; a graph that fuses logits takes that mean before the division, so its "logits" are the
fused ones, one view per face). These helpers find that division, read or replace ``T`` (graph
constant and the ``moodstream.temperature`` metadata together), and run the graph up to its logits, so
that a rewritten graph (quantised, say) can have its temperature fitted again.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from moodstream.classifier.calibration import TEMPERATURE_METADATA_KEY


class GraphEditError(ValueError):
    """The ONNX graph does not have the shape these edits expect (no ``Softmax(Div(logits, T))``)."""


def temperature_division(model: onnx.ModelProto) -> onnx.NodeProto:
    """The ``Div(logits, T)`` node whose output feeds the graph's only Softmax; GraphEditError otherwise."""
    softmaxes = [n for n in model.graph.node if n.op_type == "Softmax"]
    if len(softmaxes) != 1:
        raise GraphEditError(f"expected one Softmax node in the graph, found {len(softmaxes)}")
    producers: dict[str, onnx.NodeProto] = {out: n for n in model.graph.node for out in n.output}
    div = producers.get(softmaxes[0].input[0])
    if div is None or div.op_type != "Div":
        raise GraphEditError(
            "the Softmax's input is not Div(logits, temperature): no temperature in the graph"
        )
    return div


def _temperature_tensor(model: onnx.ModelProto, div: onnx.NodeProto) -> onnx.TensorProto:
    """The TensorProto holding T: an initializer or the value of a Constant node."""
    name = div.input[1]
    found: list[onnx.TensorProto] = [i for i in model.graph.initializer if i.name == name]
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            found += [a.t for a in node.attribute if a.name == "value"]
    if found:
        return found[0]
    raise GraphEditError(f"the temperature {name!r} of the graph is not a constant")


def graph_temperature(model: onnx.ModelProto) -> float:
    """The temperature T the graph divides its logits by."""
    value = numpy_helper.to_array(_temperature_tensor(model, temperature_division(model)))
    if value.size != 1:
        raise GraphEditError(f"the temperature must be a scalar, the graph holds shape {value.shape}")
    return float(value.reshape(()))


def set_temperature(model: onnx.ModelProto, temperature: float) -> None:
    """Replace T in the graph and in its ``moodstream.temperature`` metadata (in place)."""
    if not 0.0 < temperature < float("inf"):
        raise GraphEditError(f"temperature must be a positive finite number, got {temperature}")
    tensor = _temperature_tensor(model, temperature_division(model))
    old = numpy_helper.to_array(tensor)
    tensor.CopyFrom(numpy_helper.from_array(np.full(old.shape, temperature, dtype=old.dtype), tensor.name))
    kept = {p.key: p.value for p in model.metadata_props if p.key != TEMPERATURE_METADATA_KEY}
    onnx.helper.set_model_props(model, {**kept, TEMPERATURE_METADATA_KEY: repr(temperature)})


def logit_views(model: onnx.ModelProto, inputs: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run ``model`` on (N, ...) float32 input up to its logits: (V, N, K) float64, V views per face.

    V is 2 for a flip-averaging graph (face, mirror: rows 0..N-1 and N..2N-1 of each batch) and 1
    otherwise. The model itself is not changed (a copy gets the extra output).
    """
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    logits = temperature_division(edited).input[0]
    del edited.graph.output[:]
    edited.graph.output.append(onnx.helper.make_empty_tensor_value_info(logits))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(edited.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts: list[np.ndarray] = []
    for start in range(0, len(inputs), batch):
        chunk = inputs[start : start + batch]
        (raw,) = session.run(None, {name: chunk})
        rows = np.asarray(raw, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] % len(chunk):
            raise GraphEditError(
                f"logits of shape {rows.shape} do not split into views of {len(chunk)} faces"
            )
        parts.append(rows.reshape(rows.shape[0] // len(chunk), len(chunk), rows.shape[1]))
    return np.concatenate(parts, axis=1)
