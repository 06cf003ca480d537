"""`moodstream eval` and the FER folder-layout reader."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from moodstream.classifier import (
    DEFAULT_MODEL,
    ClassifierConfig,
    DatasetError,
    EmotionClassifier,
    load_manifest,
    resolve_manifest_path,
)
from moodstream.classifier.dataset import read_image, scan_split
from moodstream.classifier.evaluation import shrink_faces
from moodstream.classifier.wild import load_wild_labels, wild_crops
from moodstream.cli.app import build_app
from moodstream.schemas.labels import EMOTIONS
from tests.unit.fer_sample import extract_fer_sample


@pytest.fixture(scope="module")
def validation_sample(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 FER-2013 PublicTest images per class: ``<root>/<emotion>/*.jpg``."""
    return extract_fer_sample(shared_data, tmp_path_factory.mktemp("fer"), {"validation": 6}) / "validation"


def test_eval_reports_accuracy_recall_and_confusion(validation_sample: Path, tmp_path: Path) -> None:
    json_out, png_out = tmp_path / "eval.json", tmp_path / "confusion.png"
    result = CliRunner().invoke(
        build_app(),
        [
            "eval",
            str(validation_sample),
            "--json",
            str(json_out),
            "--confusion-png",
            str(png_out),
            "--no-wild",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "confusion matrix" in result.output
    report = json.loads(json_out.read_text())

    # Recompute independently from the classifier's predictions.
    clf = EmotionClassifier(ClassifierConfig())
    split = scan_split(validation_sample)
    predicted = clf.predict([read_image(f, clf.input_size, clf.color) for f in split.files]).argmax(axis=1)
    assert report["samples"] == len(split) == 6 * len(EMOTIONS)
    assert report["accuracy"] == pytest.approx(float((predicted == split.labels).mean()), abs=1e-6)
    confusion = np.array(report["confusion"])
    assert confusion.shape == (7, 7) and confusion.sum(axis=1).tolist() == [6] * 7
    assert report["recall"]["happy"] == pytest.approx(confusion[3, 3] / 6, abs=1e-6)
    assert report["labels"] == list(EMOTIONS)
    image = cv2.imread(str(png_out))
    assert image is not None and image.ndim == 3


def _folder(tmp_path: Path, classes: list[str], images: int = 1) -> Path:
    for name in classes:
        (tmp_path / name).mkdir(parents=True)
        for i in range(images):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), np.full((48, 48), 128, np.uint8))
    return tmp_path


@pytest.mark.parametrize(
    ("classes", "images", "message"),
    [
        (["happy", "joyful"], 1, "unknown class folder"),
        (["happy", "sad"], 0, "holds no images"),
        ([], 0, "holds no images"),
    ],
    ids=["unknown class name", "class folders without images", "empty folder"],
)
def test_bad_dataset_folders_raise_dataset_error(
    tmp_path: Path, classes: list[str], images: int, message: str
) -> None:
    root = _folder(tmp_path, classes, images)
    with pytest.raises(DatasetError, match=message):
        scan_split(root)
    result = CliRunner().invoke(build_app(), ["eval", str(root)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_subset_of_classes_and_upper_case_names_are_accepted(tmp_path: Path) -> None:
    split = scan_split(_folder(tmp_path, ["Happy", "sad"], images=2))
    assert sorted(split.labels.tolist()) == [3, 3, 4, 4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/folder"], "does not exist"),
        (["{root}", "--model", "no-such-model"], "unknown model"),
    ],
    ids=["missing folder", "unknown model"],
)
def test_eval_bad_arguments_exit_1_with_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    root = _folder(tmp_path, ["happy"])
    result = CliRunner().invoke(build_app(), ["eval", *(a.format(root=root) for a in args)])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unreadable_image_raises_dataset_error(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="cannot decode"):
        read_image(tmp_path / "happy" / "broken.jpg", (48, 48), "gray")


FACE_SIZES = [16, 20, 24, 32, 40, 48]


def test_eval_face_sizes_reports_accuracy_and_shares_per_size(
    validation_sample: Path, tmp_path: Path
) -> None:
    json_out = tmp_path / "eval.json"
    sizes = ",".join(map(str, FACE_SIZES))
    args = ["eval", str(validation_sample), "--face-sizes", sizes, "--json", str(json_out), "--no-wild"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "by face size" in result.output
    report = json.loads(json_out.read_text())
    assert {"accuracy", "macro_f1", "ece", "recall", "true_shares", "predicted_shares", "face_sizes"} <= set(
        report
    )
    assert 0.0 <= report["macro_f1"] <= 1.0 and 0.0 <= report["ece"] <= 1.0
    assert report["true_shares"] == {e: pytest.approx(1 / 7, abs=1e-6) for e in EMOTIONS}
    assert [f["side"] for f in report["face_sizes"]] == FACE_SIZES
    for entry in report["face_sizes"]:
        assert set(entry) == {"side", "accuracy", "macro_f1", "predicted_shares", "largest_share_gap"}
        assert 0.0 <= entry["accuracy"] <= 1.0 and 0.0 <= entry["macro_f1"] <= 1.0
        assert list(entry["predicted_shares"]) == list(EMOTIONS)
        assert sum(entry["predicted_shares"].values()) == pytest.approx(1.0, abs=1e-5)
    # Side 48 is the model's own input size: the faces are unchanged, so are the results.
    assert report["face_sizes"][-1]["accuracy"] == report["accuracy"]


def test_shrunk_faces_lose_detail_but_keep_shape() -> None:
    face = np.zeros((1, 48, 48), np.uint8)
    face[0, ::2] = 255  # one-pixel stripes average out at 24 px
    small = shrink_faces(face, 24)
    assert small.shape == face.shape and small.dtype == np.uint8
    assert small.std() < 0.2 * face.std()
    np.testing.assert_array_equal(shrink_faces(face, 48), face)


@pytest.mark.parametrize(
    "sizes", ["16,abc", "2,48", "16;24"], ids=["not a number", "too small", "wrong separator"]
)
def test_bad_face_sizes_are_rejected_with_a_usage_error(validation_sample: Path, sizes: str) -> None:
    result = CliRunner().invoke(build_app(), ["eval", str(validation_sample), "--face-sizes", sizes])
    assert result.exit_code == 2
    assert "face sides" in result.output or "face side" in result.output


def test_wild_check_set_is_evaluated_beside_the_split(
    validation_sample: Path, shared_data: Path, tmp_path: Path
) -> None:
    json_out = tmp_path / "eval.json"
    result = CliRunner().invoke(build_app(), ["eval", str(validation_sample), "--json", str(json_out)])
    assert result.exit_code == 0, result.output
    wild = json.loads(json_out.read_text())["in_the_wild"]
    labels = load_wild_labels()
    assert wild["samples"] == len(labels.faces)
    counts = np.array(wild["confusion"]).sum(axis=1)
    assert counts[EMOTIONS.index("neutral")] == sum(f.label == "neutral" for f in labels.faces)
    assert 0.0 <= wild["accuracy"] <= 1.0
    # Per clip or photo: its faces' true and predicted emotions, agreeing with the confusion matrix.
    by_file = wild["by_file"]
    assert set(by_file) == {f.file for f in labels.faces}
    for file, entry in by_file.items():
        faces = [f for f in labels.faces if f.file == file]
        assert entry["faces"] == len(faces) == sum(entry["predicted"].values())
        assert entry["true"] == {e: sum(f.label == e for f in faces) for e in {f.label for f in faces}}
    predicted = np.array(wild["confusion"]).sum(axis=0)
    for index, emotion in enumerate(EMOTIONS):
        assert predicted[index] == sum(e["predicted"].get(emotion, 0) for e in by_file.values())


WALKING_CLIP = "video/face-demographics-walking-and-pause.gif"
NEGATIVE = ("angry", "disgust", "fear", "sad")


def test_the_default_model_reads_the_walking_clip_as_a_person_does(
    validation_sample: Path, shared_data: Path, tmp_path: Path
) -> None:
    """Issue 12's clip target: the walking-and-pause clip's faces (all neutral by eye), cropped at the
    default model's own margin, come out mostly neutral and no negative emotion takes more than 20 %."""
    json_out = tmp_path / "eval.json"
    result = CliRunner().invoke(build_app(), ["eval", str(validation_sample), "--json", str(json_out)])
    assert result.exit_code == 0, result.output
    wild = json.loads(json_out.read_text())["in_the_wild"]
    margin = load_manifest(resolve_manifest_path(DEFAULT_MODEL)).input.crop_margin
    assert wild["crop_margin"] == margin > 0
    clip = wild["by_file"][WALKING_CLIP]
    assert clip["true"] == {"neutral": clip["faces"]}
    assert clip["predicted"].get("neutral", 0) > clip["faces"] / 2, clip["predicted"]
    for emotion in NEGATIVE:
        assert clip["predicted"].get(emotion, 0) <= 0.2 * clip["faces"], clip["predicted"]


def test_eval_crop_margin_overrides_the_models_own(
    validation_sample: Path, shared_data: Path, tmp_path: Path
) -> None:
    json_out = tmp_path / "eval.json"
    args = ["eval", str(validation_sample), "--json", str(json_out), "--crop-margin", "0"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    wild = json.loads(json_out.read_text())["in_the_wild"]
    assert wild["crop_margin"] == 0.0


def test_wild_check_set_is_skipped_with_a_reason_without_shared_data(
    validation_sample: Path, tmp_path: Path
) -> None:
    json_out = tmp_path / "eval.json"
    args = ["eval", str(validation_sample), "--json", str(json_out), "--shared-data", str(tmp_path / "none")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    skipped = json.loads(json_out.read_text())["in_the_wild"]["skipped"]
    assert "file(s) not under" in skipped and str(tmp_path / "none") in skipped


def test_wild_labels_name_files_frames_boxes_and_labels_only() -> None:
    labels = load_wild_labels()
    assert len(labels.faces) >= 100
    assert {f.label for f in labels.faces} >= {"neutral", "happy"}
    assert all(not f.file.startswith("/") and ".." not in f.file for f in labels.faces)


def test_bad_wild_labels_raise_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"description": "x", "labelled_by": "y", "method": "z", "faces": []}))
    with pytest.raises(DatasetError, match=str(path)):
        load_wild_labels(path)


def test_wild_label_naming_a_missing_frame_raises_dataset_error(shared_data: Path, tmp_path: Path) -> None:
    labels = load_wild_labels()
    face = labels.faces[0].model_copy(update={"frame": 99_999})
    broken = labels.model_copy(update={"faces": (face,)})
    with pytest.raises(DatasetError, match="cannot read frame"):
        wild_crops(
            broken, shared_data, lambda frame, marks, size, color: frame[:48, :48, 0], (48, 48), "gray"
        )
