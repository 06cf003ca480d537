"""VGG-FER training: one short epoch on a tiny FER sample, resume, export; the fer2013.csv loader."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")
pytest.importorskip("onnx", reason="export needs the train extra (onnx)")

from moodstream.classifier import ClassifierConfig, DatasetError, EmotionClassifier  # noqa: E402
from moodstream.classifier.training.__main__ import main as training_main  # noqa: E402
from moodstream.classifier.training.config import TrainConfig  # noqa: E402
from moodstream.classifier.training.data import class_weights, load_fer  # noqa: E402
from moodstream.classifier.training.export import export_checkpoint  # noqa: E402
from moodstream.classifier.training.fer_csv import load_csv_split  # noqa: E402
from moodstream.classifier.training.model import VggFer  # noqa: E402
from moodstream.classifier.training.trainer import Trainer, normalise  # noqa: E402
from moodstream.schemas.labels import EMOTIONS  # noqa: E402
from tests.unit.fer_sample import extract_fer_sample  # noqa: E402


@pytest.fixture(scope="module")
def tiny_fer(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training and 2 validation FER-2013 images per class, in the folder layout."""
    return extract_fer_sample(shared_data, tmp_path_factory.mktemp("fer"), {"train": 4, "validation": 2})


def _history(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_train_one_epoch_resume_and_export(
    tiny_fer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    base = ["train", "--data", str(tiny_fer), "--out-dir", str(out), "--width", "4", "--fc-width", "8"]
    assert training_main([*base, "--epochs", "1", "--batch-size", "8", "--log-every", "1"]) == 0
    assert "epoch 1 batch 1/4" in capsys.readouterr().out  # progress output
    assert [h["epoch"] for h in _history(out)] == [1]
    first = torch.load(out / "last.pt", weights_only=False)

    assert training_main([*base, "--epochs", "2", "--batch-size", "8", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert [h["epoch"] for h in _history(out)] == [1, 2]
    second = torch.load(out / "last.pt", weights_only=False)
    assert second["state"]["step"] == 2 * first["state"]["step"]  # continued, not restarted

    manifest = export_checkpoint(out / "best.pt", tmp_path / "models", "tiny-vgg")
    clf = EmotionClassifier(ClassifierConfig(model=str(tmp_path / "models" / "tiny-vgg.json")))
    assert clf.input_size == (48, 48) and clf.color == "gray"
    assert manifest.labels == EMOTIONS

    # The ONNX file computes what the checkpoint's network computes (softmax, averaged with the flip).
    best = torch.load(out / "best.pt", weights_only=False)
    net = VggFer(width=4, fc_width=8).eval()
    net.load_state_dict(best["model"])
    images, _ = load_fer(tiny_fer, "validation")
    with torch.no_grad():
        x = normalise(images)
        expected = (torch.softmax(net(x), 1) + torch.softmax(net(torch.flip(x, dims=[3])), 1)) / 2
    np.testing.assert_allclose(clf.predict(list(images)), expected.numpy(), atol=1e-5)


def test_early_stopping_ends_the_run(tiny_fer: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        data=str(tiny_fer),
        out_dir=str(tmp_path),
        width=4,
        fc_width=8,
        epochs=50,
        patience=1,
        lr=1e-9,
        log_every=99,
    )
    state = Trainer(config).run()
    assert state.epoch == 2  # epoch 1 sets the best, epoch 2 does not improve on it with a frozen net
    assert state.best_epoch == 1


def test_class_weights_favour_rare_classes() -> None:
    labels = np.array([3] * 90 + [1] * 10)
    weights = class_weights(labels, "inverse_sqrt")
    assert weights[1] > weights[3]
    assert np.isclose((weights[labels]).mean(), 1.0)
    assert np.allclose(class_weights(labels, "none"), 1.0)


def _write_csv(
    path: Path, rows: list[tuple[str, str, str]], header: tuple[str, ...] = ("emotion", "pixels", "Usage")
):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _pixels(value: int, count: int = 48 * 48) -> str:
    return " ".join([str(value)] * count)


def test_csv_loader_reads_each_split(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    _write_csv(
        path,
        [("3", _pixels(10), "Training"), ("0", _pixels(20), "PublicTest"), ("6", _pixels(30), "Training")],
    )
    images, labels = load_csv_split(path, "train")
    assert images.shape == (2, 48, 48) and images.dtype == np.uint8
    assert labels.tolist() == [3, 6] and images[1, 0, 0] == 30
    images, labels = load_csv_split(path, "validation")
    assert labels.tolist() == [0] and images[0, 47, 47] == 20
    # the training entry point takes the csv as --data as well
    train_x, _ = load_fer(path, "train")
    assert train_x.shape == (2, 48, 48)


BAD_CSVS: list[tuple[str, list[tuple[str, str, str]], tuple[str, ...], str]] = [
    ("missing column", [("3", _pixels(1), "Training")], ("emotion", "pixels", "Split"), "missing column"),
    ("emotion out of range", [("7", _pixels(1), "Training")], ("emotion", "pixels", "Usage"), "outside 0..6"),
    (
        "emotion not a number",
        [("happy", _pixels(1), "Training")],
        ("emotion", "pixels", "Usage"),
        "bad emotion",
    ),
    ("too few pixels", [("3", _pixels(1, 100), "Training")], ("emotion", "pixels", "Usage"), "2304 pixel"),
    ("pixel above 255", [("3", _pixels(300), "Training")], ("emotion", "pixels", "Usage"), "0..255"),
    ("no rows of the split", [("3", _pixels(1), "PublicTest")], ("emotion", "pixels", "Usage"), "no rows"),
]


@pytest.mark.parametrize(("case", "rows", "header", "message"), BAD_CSVS, ids=[c[0] for c in BAD_CSVS])
def test_bad_csv_raises_dataset_error(
    tmp_path: Path, case: str, rows: list[tuple[str, str, str]], header: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "fer2013.csv"
    _write_csv(path, rows, header)
    with pytest.raises(DatasetError, match=message):
        load_csv_split(path, "train")


@pytest.mark.parametrize(("data", "message"), [("missing.csv", "neither"), ("nothere", "neither")])
def test_missing_training_data_raises_dataset_error(tmp_path: Path, data: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_fer(tmp_path / data, "train")


def test_gpu_recipe_runs_on_the_cpu_without_a_gpu_and_exports(
    tiny_fer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from moodstream.classifier.training.gpu import main as gpu_main

    out = tmp_path / "gpu-run"
    args = [
        "--data",
        str(tiny_fer),
        "--out-dir",
        str(out),
        "--device",
        "cpu",
        "--width",
        "4",
        "--fc-width",
        "8",
    ]
    assert gpu_main([*args, "--epochs", "2", "--batch-size", "8", "--threads", "1"]) == 0
    assert "no GPU: training on the CPU" in capsys.readouterr().err
    assert [h["epoch"] for h in _history(out)] == [1, 2]
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["config"]["standardize"] and best["config"]["camera_augment"]  # the recipe's defaults
    assert best["config"]["width"] == 4  # flags override the recipe
    manifest = export_checkpoint(out / "best.pt", tmp_path / "models", "gpu-tiny")
    clf = EmotionClassifier(ClassifierConfig(model=str(tmp_path / "models" / "gpu-tiny.json")))
    assert clf.predict([np.zeros((48, 48), np.uint8)]).shape == (1, 7) and manifest.labels == EMOTIONS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out-dir", "x"], "--data"),
        (["--data", "d", "--out-dir", "x", "--width", "1000"], "--width"),
        (["--data", "d", "--out-dir", "x", "--device", "tpu"], "invalid choice"),
    ],
    ids=["data missing", "width out of bounds", "unknown device"],
)
def test_gpu_recipe_bad_arguments_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from moodstream.classifier.training.gpu import main as gpu_main

    with pytest.raises(SystemExit) as stopped:
        gpu_main(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_gpu_recipe_asked_for_cuda_without_a_gpu_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from moodstream.classifier.training.gpu import main as gpu_main

    with pytest.raises(SystemExit):
        gpu_main(["--data", "d", "--out-dir", "x", "--device", "cuda"])
    assert "no CUDA GPU" in capsys.readouterr().err


def _tiny_run(tiny_fer: Path, out: Path, seed: int) -> Path:
    base = ["train", "--data", str(tiny_fer), "--out-dir", str(out), "--width", "4", "--fc-width", "8"]
    assert training_main([*base, "--epochs", "1", "--batch-size", "8", "--seed", str(seed)]) == 0
    return out / "best.pt"


def _checkpoint_logits(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    """A checkpoint's logits of the faces and of their mirror images: (2, N, 7)."""
    saved = torch.load(checkpoint, weights_only=False)
    net = VggFer(width=4, fc_width=8).eval()
    net.load_state_dict(saved["model"])
    with torch.no_grad():
        x = normalise(images)
        return torch.stack([net(x), net(torch.flip(x, dims=[3]))]).numpy()


def _checkpoint_probabilities(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    """What a checkpoint's network gives: softmax averaged with the mirrored face, temperature 1."""
    return torch.softmax(torch.from_numpy(_checkpoint_logits(checkpoint, images)), 2).mean(0).numpy()


@pytest.fixture(scope="module")
def two_runs(tiny_fer: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """best.pt of two one-epoch runs with different seeds: the members of an ensemble."""
    root = tmp_path_factory.mktemp("two-runs")
    return _tiny_run(tiny_fer, root / "a", 0), _tiny_run(tiny_fer, root / "b", 1)


def test_an_ensemble_exports_as_one_graph_averaging_its_members(
    tiny_fer: Path, two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = two_runs
    assert training_main(["export", str(first), str(second), str(tmp_path / "m"), "--name", "duo"]) == 0
    manifest = json.loads((tmp_path / "m" / "duo.json").read_text())
    assert manifest["architecture"].startswith("ensemble of 2") and "seed 1" in manifest["source"]
    clf = EmotionClassifier(ClassifierConfig(model=str(tmp_path / "m" / "duo.json")))
    images, _ = load_fer(tiny_fer, "validation")
    expected = (_checkpoint_probabilities(first, images) + _checkpoint_probabilities(second, images)) / 2
    np.testing.assert_allclose(clf.predict(list(images)), expected, atol=1e-4)


def test_an_ensemble_fused_by_logits_is_the_softmax_of_all_views_mean_logits(
    tiny_fer: Path, two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = two_runs
    out = tmp_path / "m"
    assert (
        training_main(["export", str(first), str(second), str(out), "--name", "duo", "--fusion", "logits"])
        == 0
    )
    manifest = json.loads((out / "duo.json").read_text())
    assert manifest["architecture"].startswith("ensemble of 2 (logits averaged in the graph)")
    images, _ = load_fer(tiny_fer, "validation")
    mean_logits = np.concatenate(
        [_checkpoint_logits(first, images), _checkpoint_logits(second, images)]
    ).mean(0)
    expected = torch.softmax(torch.from_numpy(mean_logits), 1).numpy()
    clf = EmotionClassifier(ClassifierConfig(model=str(out / "duo.json")))
    np.testing.assert_allclose(clf.predict(list(images)), expected, atol=1e-4)
    # Not the mean of the members' probabilities: the two fusions differ on these faces.
    assert (
        np.abs(
            expected
            - (_checkpoint_probabilities(first, images) + _checkpoint_probabilities(second, images)) / 2
        ).max()
        > 1e-4
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "d"], "--out-dir: Field required"),
        (["recover", "g.onnx", "o.pt", "--width", "4"], "--data: Field required; --out-dir: Field required"),
        (["train", "--data", "d", "--out-dir", "x", "--width", "1000"], "--width: Input should be less than"),
        (
            ["train", "--data", "d", "--out-dir", "x", "--epochs", "0"],
            "--epochs: Input should be greater than",
        ),
    ],
    ids=["train without out-dir", "recover without data and out-dir", "width too large", "zero epochs"],
)
def test_bad_training_flags_are_usage_errors_naming_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        training_main(args)
    assert stopped.value.code == 2
    assert re.search("invalid training flags: .*" + re.escape(message), capsys.readouterr().err)


def test_a_shipped_graph_recovers_into_a_checkpoint_a_run_can_start_from(
    tiny_fer: Path, two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best = two_runs[0]
    export_checkpoint(best, tmp_path / "m", "tiny")
    recovered = tmp_path / "recovered.pt"
    shape = ["--data", str(tiny_fer), "--out-dir", str(tmp_path / "b"), "--width", "4", "--fc-width", "8"]
    args = ["recover", str(tmp_path / "m" / "tiny.onnx"), str(recovered), *shape, "--faces", "28"]
    assert training_main(args) == 0
    images, _ = load_fer(tiny_fer, "validation")
    # Batch norms unfolded from the convolutions: the same function as the graph (and the checkpoint).
    np.testing.assert_allclose(
        _checkpoint_probabilities(recovered, images), _checkpoint_probabilities(best, images), atol=1e-4
    )
    start = ["train", *shape, "--epochs", "1", "--batch-size", "8", "--lr", "1e-9", "--init-from"]
    assert training_main([*start, str(recovered)]) == 0
    assert f"network initialised from {recovered}" in capsys.readouterr().out
    after = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    before = torch.load(recovered, weights_only=False)["model"]
    torch.testing.assert_close(after["features.0.weight"], before["features.0.weight"], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("graph_nodes", "words"),
    [("Relu", "expected 13 Conv and 3 Gemm nodes"), ("Conv", "does not fit")],
)
def test_recovering_a_graph_of_another_shape_names_the_file(
    tiny_fer: Path, two_runs: tuple[Path, Path], tmp_path: Path, graph_nodes: str, words: str
) -> None:
    from moodstream.classifier.errors import ModelFileError
    from moodstream.classifier.training.recover import unfold

    best = two_runs[0]
    export_checkpoint(best, tmp_path / "m", "tiny")
    graph = tmp_path / "m" / "tiny.onnx"
    if graph_nodes == "Relu":  # a graph with a Conv node removed
        import onnx

        model = onnx.load(str(graph))
        conv = next(n for n in model.graph.node if n.op_type == "Conv")
        conv.op_type = "Relu"
        del conv.input[1:]
        onnx.save(model, str(graph))
        net = VggFer(width=4, fc_width=8)
    else:  # the right graph, a wider network
        net = VggFer(width=8, fc_width=8)
    images, _ = load_fer(tiny_fer, "train")
    with pytest.raises(ModelFileError, match=words) as caught:
        unfold(net, graph, images)
    assert str(graph) in str(caught.value)


@pytest.mark.parametrize(
    ("command", "operands"),
    [
        ("recover", ["{tmp}/graph.onnx", "{tmp}/out.pt", "--out-dir", "{tmp}/run", "--width", "4"]),
        ("average", ["{tmp}/a.pt", "{tmp}/b.pt", "--out", "{tmp}/out.pt"]),
    ],
)
def test_both_batch_norm_commands_reject_zero_faces_by_name(
    tiny_fer: Path, tmp_path: Path, command: str, operands: list[str]
) -> None:
    args = [command, *(o.format(tmp=tmp_path) for o in operands), "--data", str(tiny_fer), "--faces", "0"]
    with pytest.raises(SystemExit, match="--faces must be at least 1, got 0"):
        training_main(args)
    assert not (tmp_path / "out.pt").exists()


def test_a_constant_lr_run_keeps_snapshots_that_average_into_an_exportable_network(
    tiny_fer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "swa"
    run = ["train", "--data", str(tiny_fer), "--out-dir", str(out), "--width", "4", "--fc-width", "8"]
    flags = ["--epochs", "3", "--batch-size", "8", "--lr", "0.01", "--warmup-epochs", "0"]
    assert training_main([*run, *flags, "--lr-schedule", "constant", "--keep-snapshots"]) == 0
    snapshots = sorted(out.glob("epoch_*.pt"))
    assert [p.name for p in snapshots] == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt"]
    states = [torch.load(p, weights_only=False)["model"] for p in snapshots]
    assert not torch.equal(states[0]["features.0.weight"], states[2]["features.0.weight"])  # it trained

    averaged = tmp_path / "averaged.pt"
    args = ["average", *map(str, snapshots), "--out", str(averaged), "--data", str(tiny_fer), "--faces", "28"]
    assert training_main(args) == 0
    result = torch.load(averaged, weights_only=False)
    mean = sum(s["features.0.weight"] for s in states) / 3
    torch.testing.assert_close(result["model"]["features.0.weight"], mean, atol=1e-6, rtol=0)
    # Batch norms re-measured on the 28 faces (and mirrors), not the mean of the snapshots' statistics.
    mean_stat = sum(s["features.1.running_mean"] for s in states) / 3
    assert not torch.allclose(result["model"]["features.1.running_mean"], mean_stat)
    assert result["state"]["averaged_epochs"] == [1, 2, 3]

    manifest = export_checkpoint(averaged, tmp_path / "m", "tiny-swa")
    assert "epochs 1, 2, 3 averaged" in manifest.source and "constant LR 0.01" in manifest.source
    images, _ = load_fer(tiny_fer, "validation")
    clf = EmotionClassifier(ClassifierConfig(model=str(tmp_path / "m" / "tiny-swa.json")))
    expected = _checkpoint_probabilities(averaged, images)
    np.testing.assert_allclose(clf.predict(list(images)), expected, atol=1e-4)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("one", "needs at least 2 snapshots, got 1"),
        ("not-a-checkpoint", "is not a training checkpoint"),
        ("other-width", "expected {'width': 4"),
    ],
)
def test_averaging_snapshots_that_do_not_fit_together_names_the_file(
    tiny_fer: Path, two_runs: tuple[Path, Path], tmp_path: Path, case: str, words: str
) -> None:
    from moodstream.classifier.errors import ModelFileError
    from moodstream.classifier.training.average import average_snapshots

    first = two_runs[0]
    second = tmp_path / "second.pt"
    if case == "not-a-checkpoint":
        second.write_bytes(b"not a checkpoint")
    elif case == "other-width":
        config = TrainConfig(data=str(tiny_fer), out_dir=str(tmp_path), width=8, fc_width=8)
        torch.save({"config": config.model_dump(), "model": VggFer(width=8, fc_width=8).state_dict()}, second)
    paths = [first] if case == "one" else [first, second]
    images, _ = load_fer(tiny_fer, "train")
    with pytest.raises(ModelFileError, match=words.replace("{", r"\{")) as caught:
        average_snapshots(paths, images, tmp_path / "out.pt")
    if case != "one":
        assert str(second) in str(caught.value)
    assert not (tmp_path / "out.pt").exists()  # nothing half-written
