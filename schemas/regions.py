"""Masks and zones of a camera (stores.yaml ``cameras[].masks`` / ``cameras[].zones``): polygons in
normalised frame coordinates.

A point is ``[x, y]`` with x a fraction of the frame's width and y of its height, both from 0 (left/top
edge) to 1 (right/bottom edge), so one polygon fits every resolution a camera may send. ``check_polygon``
refuses fewer than 3 points, points outside the frame, a polygon without area and a self-intersecting
one (edges that cross), each with a message naming the points or edges. ``zone_at`` names the zone that
holds a point; ``polygon_pixels`` gives a polygon's vertices in a frame of a given size (for blanking and
drawing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Point = tuple[float, float]
MIN_POINTS: Final[int] = 3
MAX_POINTS: Final[int] = 64
MAX_POLYGONS: Final[int] = 32
ZONE_ID_PATTERN: Final[str] = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segment a-b and segment c-d share a point (touching counts)."""
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and d1 != 0 and d2 != 0 and ((d3 > 0) != (d4 > 0)) and d3 != 0 and d4 != 0:
        return True
    return (
        (d1 == 0 and _on_segment(a, c, d))
        or (d2 == 0 and _on_segment(b, c, d))
        or (d3 == 0 and _on_segment(c, a, b))
        or (d4 == 0 and _on_segment(d, a, b))
    )


def polygon_area(points: Sequence[Point]) -> float:
    """Area of a simple polygon (shoelace formula), in squared normalised units (1.0: the whole frame)."""
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def check_polygon(points: list[Point]) -> list[Point]:
    """``points`` if they make a usable polygon; ValueError naming what is wrong otherwise."""
    if len(points) < MIN_POINTS:
        raise ValueError(
            f"a polygon needs at least {MIN_POINTS} points [x, y], found {len(points)}; list its corners "
            "in order around the area"
        )
    if len(points) > MAX_POINTS:
        raise ValueError(f"a polygon has at most {MAX_POINTS} points, found {len(points)}")
    for index, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"point {index + 1} [{x:g}, {y:g}] lies outside the frame: x and y are fractions of the "
                "frame's width and height, from 0 to 1"
            )
    count = len(points)
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbouring edges share a corner
            a, b = points[i], points[(i + 1) % count]
            c, d = points[j], points[(j + 1) % count]
            if segments_cross(a, b, c, d):
                raise ValueError(
                    f"the polygon intersects itself: edge {i + 1} (point {i + 1} to {(i + 1) % count + 1}) "
                    f"crosses edge {j + 1} (point {j + 1} to {(j + 1) % count + 1}); list the corners in "
                    "order around the area"
                )
    if polygon_area(points) <= 1e-6:
        raise ValueError("the polygon has no area (its points lie on one line)")
    return points


Polygon = Annotated[
    list[tuple[Annotated[float, Field(allow_inf_nan=False)], Annotated[float, Field(allow_inf_nan=False)]]],
    AfterValidator(check_polygon),
    Field(
        description="Corners [x, y] in order around the area, as fractions of the frame's width (x) and "
        f"height (y) from 0 to 1: {MIN_POINTS}-{MAX_POINTS} points, edges must not cross.",
        json_schema_extra={"minItems": MIN_POINTS, "maxItems": MAX_POINTS},
        examples=[[[0.0, 0.0], [0.3, 0.0], [0.3, 1.0], [0.0, 1.0]]],
    ),
]
"""A polygon of a stores.yaml camera, validated by ``check_polygon``."""


class Zone(BaseModel):
    """A named area of a camera's view whose visits are counted on their own (an entrance, a queue)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(
        pattern=ZONE_ID_PATTERN,
        description="Zone id, unique within the camera (reports filter by it): 1-64 lowercase letters, "
        "digits, '-' or '_'.",
        examples=["entrance", "checkout-queue"],
    )
    polygon: Polygon


def polygon_pixels(points: Sequence[Point], size: tuple[int, int]) -> np.ndarray:
    """(N, 2) int32 vertices of a normalised polygon in a frame of ``size`` (width, height) pixels."""
    width, height = size
    scaled = np.asarray(points, dtype=np.float64) * np.array([width, height], dtype=np.float64)
    return np.round(scaled).astype(np.int32)


def _inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd rule: whether ``point`` lies inside ``polygon`` (both normalised)."""
    x, y = point
    inside = False
    count = len(polygon)
    for i in range(count):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % count]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def zone_at(point: Point, zones: Sequence[Zone]) -> str | None:
    """Id of the first zone (file order) holding a normalised point, None when no zone holds it."""
    for zone in zones:
        if _inside(point, zone.polygon):
            return zone.id
    return None


def box_zone(
    box: tuple[float, float, float, float], size: tuple[int, int], zones: Sequence[Zone]
) -> str | None:
    """Zone of a face box (x1, y1, x2, y2 pixels) in a frame of ``size`` (width, height): the zone holding
    the box's centre."""
    width, height = size
    centre = ((box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height)
    return zone_at(centre, zones)
