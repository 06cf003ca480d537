"""Area resampling from integral images: the image pyramid and the fixed-size candidate crops.

Both reproduce "area" interpolation as adaptive average pooling does it: output pixel i of an axis of
length ``n_in`` resized to ``n_out`` is the mean of input pixels [floor(i * n_in / n_out),
ceil((i + 1) * n_in / n_out)). Sums are exact integer differences of an integral image, so one
integral image per frame serves every pyramid level and every crop.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Largest pixel count whose integral image still fits int32 (255 * H * W < 2**31).
INT32_PIXEL_LIMIT = (2**31 - 1) // 255
#: Bytes of integral-image rows gathered per strip of a pyramid level: strips of about this size keep
#: the temporaries in CPU cache (measured fastest for 480- and 1920-pixel-wide frames).
STRIP_BYTES = 384 * 1024


def integral_images(frames: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, H + 1, W + 1, 3) integral images (int32, or float64 for huge frames).

    Entry [b, y, x, c] is the sum of frames[b, :y, :x, c].
    """
    count, height, width, _ = frames.shape
    depth, dtype = (cv2.CV_32S, np.int32) if height * width <= INT32_PIXEL_LIMIT else (cv2.CV_64F, np.float64)
    out = np.empty((count, height + 1, width + 1, 3), dtype=dtype)
    for index in range(count):
        written = cv2.integral(frames[index], sum=out[index], sdepth=depth)  # fills out[index] in place
        if written is not None and not np.shares_memory(written, out[index]):
            out[index] = written
    return out


def pool_bins(n_in: np.ndarray | int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) input index of each of ``n_out`` bins over ``n_in`` pixels.

    ``n_in`` may be an int or an (K,) array (one axis length per crop); the result is (n_out,) or (K, n_out).
    """
    steps = np.arange(n_out, dtype=np.int64)
    n_in_arr = np.asarray(n_in, dtype=np.int64)[..., None]
    starts = (steps * n_in_arr) // n_out
    ends = ((steps + 1) * n_in_arr + n_out - 1) // n_out
    return starts, ends


def pyramid_level(integral: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-resize every frame of an integral-image batch to (height, width).

    (B, H + 1, W + 1, 3) integral images -> (B, height, width, 3) float32 pixel values in [0, 255].
    Works in strips of output rows so that temporaries stay small (cache-resident, reused).
    """
    count, in_h1, in_w1, _ = integral.shape
    row_start, row_end = pool_bins(in_h1 - 1, height)
    col_start, col_end = pool_bins(in_w1 - 1, width)
    channel = np.arange(3)
    col_end3 = (col_end[:, None] * 3 + channel).ravel()  # column index into a (rows, (W + 1) * 3) view
    col_start3 = (col_start[:, None] * 3 + channel).ravel()
    area = (row_end - row_start)[:, None] * (col_end - col_start)[None, :]
    inv_area = (1.0 / area).astype(np.float32)
    # Bin sums below 2**24 are exact in float32, and a float32 product is rounded once either way.
    math_type = np.float32 if 255 * int(area.max()) < 2**24 else np.float64
    out = np.empty((count, height, width, 3), dtype=np.float32)
    strip_rows = max(1, STRIP_BYTES // (in_w1 * 3 * integral.itemsize))
    for frame in range(count):
        table = integral[frame].reshape(in_h1, in_w1 * 3)
        for top in range(0, height, strip_rows):
            rows = slice(top, min(height, top + strip_rows))
            band = table[row_end[rows]]
            band -= table[row_start[rows]]  # (strip, (W + 1) * 3): sums over each output row's input rows
            sums = np.take(band, col_end3, axis=1)
            sums -= np.take(band, col_start3, axis=1)
            np.multiply(
                sums.reshape(-1, width, 3),
                inv_area[rows, :, None],
                out=out[frame, rows],
                dtype=math_type,
                casting="unsafe",
            )
    return out


def crop_windows(integral: np.ndarray, frame_index: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Area-resize windows of frames to size x size.

    integral: (B, H + 1, W + 1, 3) integral images; frame_index: (K,) int index into B;
    windows: (K, 4) int [x0, y0, x1, y1], pixel rows y0..y1-1 and columns x0..x1-1, non-empty and
    inside the frame. Returns (K, size, size, 3) float32 pixel values in [0, 255].
    """
    _, in_h1, in_w1, _ = integral.shape
    pixels = integral.reshape(-1, 3)  # one row per integral-image entry
    x0, y0, x1, y1 = (windows[:, i].astype(np.int64) for i in range(4))
    row_start, row_end = pool_bins(y1 - y0, size)
    col_start, col_end = pool_bins(x1 - x0, size)
    area = ((row_end - row_start)[:, :, None] * (col_end - col_start)[:, None, :]).astype(np.float32)
    base = (frame_index.astype(np.int64) * in_h1 + y0)[:, None] * in_w1  # flat index of each window's row 0
    row_start, row_end = base + row_start * in_w1, base + row_end * in_w1
    col_start, col_end = col_start + x0[:, None], col_end + x0[:, None]

    def corner(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        values: np.ndarray = np.take(pixels, (rows[:, :, None] + cols[:, None, :]).ravel(), axis=0)
        return values

    sums = corner(row_end, col_end)
    sums -= corner(row_start, col_end)
    sums -= corner(row_end, col_start)
    sums += corner(row_start, col_start)
    crops = sums.reshape(len(windows), size, size, 3).astype(np.float32)
    crops /= area[..., None]
    return crops
