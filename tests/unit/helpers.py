"""Shared fixtures-as-data for the unit tests (kept here so the test modules do not repeat them)."""

from __future__ import annotations

# A valid two-camera registry: one network camera whose source interpolates ${CAM_USER} and
# ${CAM_PASS}, and one looping local video file. Tests pick their own environment for the variables.
VALID_REGISTRY_YAML = """\
version: 1
pipeline:
  bucket: 60s
stores:
  - id: hn-trangtien
    name: Trang Tien
    branch: hanoi
    timezone: Asia/Ho_Chi_Minh
    cameras:
      - id: entrance
        source: rtsp://${CAM_USER}:${CAM_PASS}@192.0.2.10/stream1
        fps: 2
      - id: counter
        source: videos/counter.mp4
        fps: 5
        loop: true
"""


def reused_through_aliases(value: str, levels: int, width: int = 9) -> str:
    """A registry-shaped file whose one store's ``branch`` reuses the string ``value`` ``width**levels`` times
    through aliases (the shape of a file that expands far beyond its own size)."""
    lines = ["version: 1", f'x0: &x0 "{value}"']
    for level in range(1, levels + 1):
        lines.append(f"x{level}: &x{level} [{', '.join([f'*x{level - 1}'] * width)}]")
    return "\n".join([*lines, "stores:", "  - id: s1", f"    branch: *x{levels}"]) + "\n"
