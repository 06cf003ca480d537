"""Expected calibration error and temperature fitting (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from moodstream.classifier.calibration import (
    expected_calibration_error,
    fit_temperature,
    fuse_logit_views,
    negative_log_likelihood,
    objective_wording,
    tempered_probabilities,
)


def test_ece_of_a_perfectly_calibrated_and_an_overconfident_model() -> None:
    # 10 faces at confidence 0.8, 8 of them right: calibrated, ECE 0.
    probabilities = np.tile([[0.8, 0.2]], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-12)
    # Same confidence, half right: ECE = |0.5 - 0.8| = 0.3.
    assert expected_calibration_error(probabilities, np.array([0, 1] * 5)) == pytest.approx(0.3)


def test_ece_weighs_bins_by_their_share_of_faces() -> None:
    probabilities = np.array([[1.0, 0.0], [1.0, 0.0], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1])  # bin 15: acc 1, conf 1; bin 9: acc 0, conf 0.55
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.55)


def test_fitted_temperature_recovers_the_one_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (1, 20000, 7))
    true_temperature = 2.5
    probabilities = tempered_probabilities(logits, true_temperature)
    labels = np.array([rng.choice(7, p=p) for p in probabilities])
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    at_fit = negative_log_likelihood(tempered_probabilities(logits, fitted), labels)
    assert at_fit <= negative_log_likelihood(tempered_probabilities(logits, 1.0), labels)
    calibrated = expected_calibration_error(tempered_probabilities(logits, fitted), labels)
    assert calibrated < 0.02 < expected_calibration_error(tempered_probabilities(logits, 1.0), labels)


def test_tempered_probabilities_average_the_views() -> None:
    views = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])  # face and mirror disagree symmetrically
    np.testing.assert_allclose(tempered_probabilities(views, 1.0), [[0.5, 0.5]])


def test_fused_logit_views_are_the_mean_view_and_reject_a_flat_array() -> None:
    views = np.array([[[3.0, 0.0]], [[1.0, 0.0]]])  # the face is sure, the mirror less so
    fused = fuse_logit_views(views)
    np.testing.assert_allclose(fused, [[[2.0, 0.0]]])
    expected = np.exp(2.0) / (np.exp(2.0) + 1.0)  # softmax of the mean logits, not the mean of softmaxes
    np.testing.assert_allclose(tempered_probabilities(fused, 1.0)[0, 0], expected)
    assert tempered_probabilities(views, 1.0)[0, 0] < expected
    with pytest.raises(ValueError, match=r"expected \(V, N, K\) logits"):
        fuse_logit_views(np.zeros((3, 7)))


@pytest.mark.parametrize(
    ("probabilities", "labels"),
    [
        (np.zeros((0, 7)), np.zeros(0, dtype=int)),
        (np.zeros((3, 7)), np.zeros(2, dtype=int)),
        (np.zeros(7), np.zeros(1)),
    ],
    ids=["empty", "length mismatch", "not 2-d"],
)
def test_bad_shapes_raise_value_error(probabilities: np.ndarray, labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected"):
        expected_calibration_error(probabilities, labels)


WORDINGS: list[tuple[int, bool, str, str]] = [
    (1, False, "probabilities", "NLL of the graph output: softmax(logits / T)"),
    (
        1,
        True,
        "probabilities",
        "NLL of the graph output: mean over views (face, mirror) of softmax(logits / T)",
    ),
    (1, True, "logits", "NLL of the graph output: softmax(mean over views (face, mirror) of logits / T)"),
    (
        2,
        True,
        "probabilities",
        "NLL of the graph output: mean over 2 networks and views (face, mirror) of softmax(logits / T)",
    ),
    (3, False, "logits", "NLL of the graph output: softmax(mean over 3 networks of logits / T)"),
]


@pytest.mark.parametrize(("networks", "flip", "fusion", "wording"), WORDINGS)
def test_objective_wording_names_what_the_temperature_was_fitted_to(
    networks: int, flip: bool, fusion: str, wording: str
) -> None:
    assert objective_wording(networks, flip, fusion) == wording


@pytest.mark.parametrize(("name", "fusion"), [("vgg-fer-v2", "probabilities"), ("vgg-fer-v4", "logits")])
def test_shipped_manifests_use_the_same_wording(name: str, fusion: str) -> None:
    from moodstream.classifier import load_manifest
    from moodstream.classifier.registry import resolve_manifest_path

    calibration = load_manifest(resolve_manifest_path(name)).calibration
    assert calibration is not None and calibration.objective == objective_wording(1, True, fusion)
