"""The detector's result type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Landmark order of `Face.landmarks`.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face.

    box: (x1, y1, x2, y2) float pixel coordinates in the input frame (may extend past its border);
    score: O-Net face probability in (0, 1];
    landmarks: (5, 2) float32 (x, y) in the order of `LANDMARK_NAMES` (left/right as seen in the image).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]
