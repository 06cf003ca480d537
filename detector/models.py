"""The three MTCNN networks as ONNX Runtime sessions, verified against the model manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from moodstream.common.checksums import file_sha256
from moodstream.detector.errors import ModelFileError
from moodstream.detector.providers import create_session

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models"
MANIFEST_NAME = "manifest.json"
NETWORK_NAMES = ("pnet", "rnet", "onet")


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    """The parsed manifest.json of ``model_dir``, or None when the folder has none."""
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        if not all(isinstance(manifest["models"][name]["sha256"], str) for name in NETWORK_NAMES):
            raise TypeError("sha256 must be a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(path, f"is not a valid detector manifest ({type(exc).__name__}: {exc})") from exc
    return manifest


def verify_checksum(path: Path, expected_sha256: str) -> None:
    """Raise `ModelFileError` naming ``path`` when it is missing or its sha256 differs from the manifest."""
    if not path.is_file():
        raise ModelFileError(path, "not found")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ModelFileError(
            path, f"sha256 {actual[:12]}... does not match the manifest ({expected_sha256[:12]}...)"
        )


@dataclass
class MTCNNSessions:
    """P-Net, R-Net and O-Net sessions. Every input is (N, H, W, 3) float32 BGR pixels in [0, 255]."""

    pnet: ort.InferenceSession
    rnet: ort.InferenceSession
    onet: ort.InferenceSession

    @classmethod
    def load(cls, model_dir: Path | None, providers: list[str], intra_op_threads: int) -> MTCNNSessions:
        """Load the three networks from ``model_dir`` (default: the shipped models), checking the manifest."""
        folder = model_dir or DEFAULT_MODEL_DIR
        manifest = read_manifest(folder)
        sessions = {}
        for name in NETWORK_NAMES:
            path = folder / f"{name}.onnx"
            if manifest is not None:
                verify_checksum(path, manifest["models"][name]["sha256"])
            sessions[name] = create_session(path, providers, intra_op_threads)
        return cls(**sessions)

    def run_pnet(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) float32 -> regression (N, 4, H', W'), face_prob (N, H', W')."""
        regression, face_prob = self.pnet.run(None, {"image": images})
        return regression, face_prob

    def run_rnet(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 24, 24, 3) float32 -> regression (N, 4), face_prob (N,)."""
        regression, face_prob = self.rnet.run(None, {"image": crops})
        return regression, face_prob

    def run_onet(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 48, 48, 3) float32 -> regression (N, 4), landmarks (N, 10), face_prob (N,)."""
        regression, landmarks, face_prob = self.onet.run(None, {"image": crops})
        return regression, landmarks, face_prob
