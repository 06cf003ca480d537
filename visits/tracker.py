"""`FaceTracker`: motion-only multi-face tracking for one camera (no appearance, no face templates).

Each frame: tracks are predicted to the frame's capture time (Kalman filter, `visits.kalman`); boxes
with a high detector score are matched first, then the remaining (low-score) boxes continue the tracks
still unmatched (ByteTrack's second pass). A pair may match when the boxes overlap (IoU of the predicted
box) or the box lies within the prediction's uncertainty (Mahalanobis distance; people move far between
frames at 2 fps); the cost adds both, so a track whose motion explains a box wins it over one that
merely overlaps it. One optimal assignment (Hungarian) per pass. Unmatched high-score boxes start
tentative tracks; a tentative track that misses a frame before `min_frames` observations is dropped; a
track predicted outside the frame that finds no box has left; any track unseen for `max_gap_seconds`
ends. Track ids are in-memory integers that never leave the process.

Not searched is not missed: with motion gating the detector searches only some regions of a frame
(``searched``). An unmatched track whose whole predicted box does not lie inside one searched region was
not looked for in that frame: it is neither aged nor ended (its expiry clock moves to the frame, with no
hit counted and no Kalman correction; its motion is still predicted from its last real observation), so a
person standing still outside every motion region keeps their track until the next whole-frame search
sees them again.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from moodstream.visits import kalman
from moodstream.visits.config import MotionConfig, TrackerConfig
from moodstream.visits.errors import VisitsError

_NO_MATCH = 1e6


def check_boxes(boxes: object, scores: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, 4) x1, y1, x2, y2 boxes and (N,) scores; returns them as float64 arrays."""
    box_array = np.asarray(boxes, dtype=np.float64)
    if box_array.size == 0:
        box_array = box_array.reshape(0, 4)
    if box_array.ndim != 2 or box_array.shape[1] != 4:
        raise VisitsError(f"boxes: expected shape (N, 4) x1, y1, x2, y2, got {box_array.shape}")
    score_array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if score_array.shape != (len(box_array),):
        raise VisitsError(
            f"scores: expected shape ({len(box_array)},) (one per box), got {score_array.shape}"
        )
    if not (np.isfinite(box_array).all() and np.isfinite(score_array).all()):
        raise VisitsError("boxes/scores: expected finite numbers, got NaN or infinity")
    if (box_array[:, 2:] < box_array[:, :2]).any():
        raise VisitsError("boxes: expected x2 >= x1 and y2 >= y1 for every box")
    return box_array, score_array


def check_regions(regions: object) -> np.ndarray:
    """Validate (K, 4) x1, y1, x2, y2 searched regions (K may be 0); returns them as a float64 array."""
    array = np.asarray(regions, dtype=np.float64)
    if array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise VisitsError(f"searched: expected shape (K, 4) x1, y1, x2, y2, got {array.shape}")
    if not np.isfinite(array).all():
        raise VisitsError("searched: expected finite numbers, got NaN or infinity")
    if (array[:, 2:] < array[:, :2]).any():
        raise VisitsError("searched: expected x2 >= x1 and y2 >= y1 for every region")
    return array


def _inside_any(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(T,) whether each box (T, 4) lies wholly inside at least one region (K, 4)."""
    inside = (boxes[:, None, :2] >= regions[None, :, :2]) & (boxes[:, None, 2:] <= regions[None, :, 2:])
    return np.asarray(np.any(np.all(inside, axis=2), axis=1), dtype=bool)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, N) intersection over union of boxes a (T, 4) and b (N, 4), both x1, y1, x2, y2."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0.0, inter / np.maximum(union, 1e-12), 0.0)


class FaceTracker:
    """Tracks face boxes of one camera over time. Not thread-safe: one per camera, frames in order."""

    def __init__(self, config: TrackerConfig | None = None, motion: MotionConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.motion = motion or MotionConfig()
        self._noise = kalman.MotionNoise(
            self.motion.motion_noise, self.motion.measurement_noise, self.motion.initial_speed
        )
        self._ids = np.zeros(0, dtype=np.int64)
        self._means = np.zeros((0, 8))
        self._covs = np.zeros((0, 8, 8))
        self._last_ms = np.zeros(0, dtype=np.int64)  # capture time of each track's last observation
        self._alive_ms = np.zeros(0, dtype=np.int64)  # ... or of the last frame that did not look for it
        self._hits = np.zeros(0, dtype=np.int64)
        self._next_id = 1
        self._ended: list[int] = []

    @property
    def open_tracks(self) -> int:
        """Tracks currently alive (tentative or confirmed)."""
        return len(self._ids)

    def update(
        self,
        captured_ms: int,
        boxes: np.ndarray,
        scores: np.ndarray,
        frame_size: tuple[int, int] | None = None,
        searched: np.ndarray | None = None,
    ) -> np.ndarray:
        """Track one frame's boxes. Returns (N,) int64: the track id of each box, -1 when not tracked.

        captured_ms: the frame's capture time (epoch ms), non-decreasing from call to call;
        boxes: (N, 4) float x1, y1, x2, y2 in frame pixels; scores: (N,) detector scores;
        frame_size: (width, height) of the frame, if known: an unmatched track predicted to be outside
        it has left the view and ends at once (so that someone entering where another left is not
        taken for them); searched: (K, 4) x1, y1, x2, y2 boxes in frame pixels, the regions the detector
        searched (None: the whole frame): an unmatched track whose whole predicted box lies inside none
        of them was not looked for, and is neither aged nor ended (a tentative one included), unless it
        is predicted outside the frame. Tracks that ended before or at this frame are queued for `ended`.
        """
        box_array, score_array = check_boxes(boxes, scores)
        regions = None if searched is None else check_regions(searched)
        self._expire(captured_ms)
        dt = (captured_ms - self._last_ms) / 1000.0
        means, covs = kalman.predict(
            self._means, self._covs, dt, self.motion.max_extrapolation_seconds, self._noise
        )
        measured = kalman.boxes_to_measurements(box_array)
        high = np.flatnonzero(score_array >= self.motion.high_score)
        low = np.flatnonzero(score_array < self.motion.high_score)
        track_of_box, free_tracks = self._match(means, covs, measured, (high, low))
        self._correct(means, covs, measured, track_of_box, captured_ms)
        ids = np.full(len(box_array), -1, dtype=np.int64)
        matched = track_of_box >= 0
        ids[matched] = self._ids[track_of_box[matched]]
        if regions is not None:
            unseen = free_tracks[~_inside_any(kalman.measurements_to_boxes(means[free_tracks]), regions)]
            self._alive_ms[unseen] = captured_ms
            self._end_unmatched(free_tracks, means, frame_size, np.setdiff1d(free_tracks, unseen))
        else:
            self._end_unmatched(free_tracks, means, frame_size, free_tracks)
        new_boxes = high[~matched[high]]
        ids[new_boxes] = self._start(measured[new_boxes], captured_ms)
        return ids

    def ended(self, captured_ms: int) -> list[int]:
        """Ids of the tracks that ended (expired by ``captured_ms``, or tentative and lost) since the
        last call; each id is reported once. The caller decides which of them were visits."""
        self._expire(captured_ms)
        out, self._ended = self._ended, []
        return out

    def flush(self) -> list[int]:
        """End every track (camera idle, end of clip): the ids of all queued and open tracks."""
        out = [*self._ended, *(int(i) for i in self._ids)]
        self._ended = []
        self._keep(np.zeros(len(self._ids), dtype=bool))
        return out

    # ------------------------------------------------------------------------ internals

    def _match(
        self, means: np.ndarray, covs: np.ndarray, measured: np.ndarray, passes: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Match boxes to tracks pass by pass (each pass: indices of boxes; later passes get the tracks
        left over). Returns (N,) the track index of each box (-1 none) and the unmatched track indices."""
        track_of_box = np.full(len(measured), -1, dtype=np.int64)
        free_tracks = np.arange(len(self._ids))
        for group in passes:
            if len(group) == 0 or len(free_tracks) == 0:
                continue
            pairs = self._associate(means[free_tracks], covs[free_tracks], measured[group])
            taken = np.zeros(len(free_tracks), dtype=bool)
            for t, b in pairs:
                track_of_box[group[b]] = free_tracks[t]
                taken[t] = True
            free_tracks = free_tracks[~taken]
        return track_of_box, free_tracks

    def _associate(self, means: np.ndarray, covs: np.ndarray, measured: np.ndarray) -> list[tuple[int, int]]:
        """Optimal (track, box) pairs. Cost: (1 - IoU of the predicted box) + Mahalanobis distance of the
        box (centre and size) in units of max_distance (capped at 2). A pair is allowed when the boxes
        overlap by min_iou or the distance is within the gate, and their heights agree within
        max_size_ratio. The distance term lets a track whose motion explains a box win it over a
        track that merely overlaps it (a walker passing in front of someone standing)."""
        if len(means) == 0 or len(measured) == 0:
            return []
        cfg = self.motion
        iou = iou_matrix(kalman.measurements_to_boxes(means), kalman.measurements_to_boxes(measured))
        distance = kalman.distances(means, covs, measured, self._noise) / cfg.max_distance
        ratio = measured[None, :, 3] / np.maximum(means[:, None, 3], 1.0)
        allowed = ((iou >= cfg.min_iou) | (distance <= 1.0)) & (ratio <= cfg.max_size_ratio)
        allowed &= ratio >= 1.0 / cfg.max_size_ratio
        cost = np.where(allowed, (1.0 - iou) + np.minimum(distance, 2.0), _NO_MATCH)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _NO_MATCH]

    def _correct(
        self,
        means: np.ndarray,
        covs: np.ndarray,
        measured: np.ndarray,
        track_of_box: np.ndarray,
        captured_ms: int,
    ) -> None:
        """Kalman-correct matched tracks with their boxes; unmatched tracks keep their last posterior."""
        boxes = np.flatnonzero(track_of_box >= 0)
        if len(boxes) == 0:
            return
        tracks = track_of_box[boxes]
        new_means, new_covs = kalman.update(means[tracks], covs[tracks], measured[boxes], self._noise)
        self._means[tracks] = new_means
        self._covs[tracks] = new_covs
        self._last_ms[tracks] = captured_ms
        self._alive_ms[tracks] = captured_ms
        self._hits[tracks] += 1

    def _end_unmatched(
        self,
        unmatched: np.ndarray,
        means: np.ndarray,
        frame_size: tuple[int, int] | None,
        looked_for: np.ndarray,
    ) -> None:
        """Unmatched tracks end now when tentative (fewer than min_frames observations) and looked for
        (``looked_for``: indices of the unmatched tracks the detector searched for) or, with a frame
        size, when their predicted centre (``means`` (T, 8)) is outside the frame."""
        lost = np.zeros(len(self._ids), dtype=bool)
        lost[looked_for] = self._hits[looked_for] < self.config.min_frames
        if frame_size is not None:
            width, height = frame_size
            cx, cy = means[unmatched, 0], means[unmatched, 1]
            lost[unmatched] |= (cx < 0) | (cx > width) | (cy < 0) | (cy > height)
        if lost.any():
            self._ended.extend(int(i) for i in self._ids[lost])
            self._keep(~lost)

    def _start(self, measured: np.ndarray, captured_ms: int) -> np.ndarray:
        """New tentative tracks for (M, 4) measurements; returns their ids."""
        count = len(measured)
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        means, covs = kalman.initiate(measured, self._noise)
        self._ids = np.concatenate([self._ids, ids])
        self._means = np.concatenate([self._means, means])
        self._covs = np.concatenate([self._covs, covs])
        self._last_ms = np.concatenate([self._last_ms, np.full(count, captured_ms, dtype=np.int64)])
        self._alive_ms = np.concatenate([self._alive_ms, np.full(count, captured_ms, dtype=np.int64)])
        self._hits = np.concatenate([self._hits, np.ones(count, dtype=np.int64)])
        return ids

    def _expire(self, captured_ms: int) -> None:
        """Queue for `ended` the tracks unseen (and looked for) for longer than max_gap_seconds at
        ``captured_ms``."""
        if isinstance(captured_ms, bool) or not isinstance(captured_ms, int | np.integer):
            raise VisitsError(f"captured_ms: expected an integer (epoch ms), got {captured_ms!r}")
        expired = (captured_ms - self._alive_ms) > round(self.config.max_gap_seconds * 1000)
        if expired.any():
            self._ended.extend(int(i) for i in self._ids[expired])
            self._keep(~expired)

    def _keep(self, mask: np.ndarray) -> None:
        self._ids = self._ids[mask]
        self._means = self._means[mask]
        self._covs = self._covs[mask]
        self._last_ms = self._last_ms[mask]
        self._alive_ms = self._alive_ms[mask]
        self._hits = self._hits[mask]
