"""Detector stage adapter: ``frames`` -> ``faces``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moodstream.runtime.frame_analysis import FrameAnalyzer
from moodstream.runtime.metrics import StageCounters
from moodstream.runtime.stages.decoding import decode_all
from moodstream.runtime.worker import BatchResult, Entry
from moodstream.schemas.jpeg import decode_jpeg
from moodstream.schemas.messages import FacesMessage, FrameMessage


class DetectorStage:
    """``frames`` -> ``faces``: decode JPEGs, detect faces in all frames of the batch at once, align crops."""

    stage = "detector"

    def __init__(self, analyzer: FrameAnalyzer) -> None:
        self.analyzer = analyzer

    def handle(self, entries: Sequence[Entry], counters: StageCounters) -> BatchResult:
        """One FacesMessage per decodable frame; malformed entries and bad JPEGs are returned dead."""
        good, dead = decode_all(entries, FrameMessage.decode, FrameMessage.KIND)
        messages: list[FrameMessage] = []
        images: list[np.ndarray] = []
        for entry, message in good:
            image = decode_jpeg(message.jpeg)
            if image is None:
                dead.append(
                    (entry, f"undecodable JPEG ({len(message.jpeg)} bytes) for {message.key.label()}")
                )
                continue
            messages.append(message)
            images.append(image)
        outputs = []
        for message, image, found in zip(messages, images, self.analyzer.detect(images), strict=True):
            h, w = image.shape[:2]
            out = FacesMessage(message.key, message.captured_ms, (w, h), found.faces, found.crops)
            outputs.append(out.encode())
            counters.add(message.key.store_id, message.key.camera_id, "frames_in")
            counters.add(message.key.store_id, message.key.camera_id, "frames_out")
            counters.add(message.key.store_id, message.key.camera_id, "faces", len(found.faces))
        return BatchResult(outputs=outputs, dead=dead)
