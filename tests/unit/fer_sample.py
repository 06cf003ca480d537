"""Small samples of the FER-2013 tarball in ../shared/data for classifier tests (extracted under tmp only)."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest

TARBALL = Path("fer2013") / "fer2013-train-publictest.tar.gz"


def extract_fer_sample(shared_data: Path, dest: Path, per_class: dict[str, int]) -> Path:
    """Copy the first ``per_class[split]`` images of each class of each split to ``dest/<split>/<emotion>/``.

    Skips the test with a reason when the tarball is absent. Returns ``dest``.
    """
    tarball = shared_data / TARBALL
    if not tarball.is_file():
        pytest.skip(f"FER-2013 tarball not found at {tarball}")
    taken: Counter[tuple[str, str]] = Counter()
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in per_class:
                continue
            split, emotion, name = parts
            if taken[split, emotion] >= per_class[split]:
                continue
            source = archive.extractfile(member)
            assert source is not None
            target = dest / split / emotion / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
            taken[split, emotion] += 1
    return dest
