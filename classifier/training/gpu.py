"""Fast VGG-FER training on one GPU: the whole data set as one tensor on the device, augmentation on the
device, bfloat16 autocast, cuDNN autotuning. Falls back to the CPU (same code, slowly) when no GPU is there.

    python -m moodstream.classifier.training.gpu --data /tmp/fer2013 --out-dir /tmp/gpu-run \\
        [--device auto|cuda|cpu] [--width 64 --fc-width 512 --epochs 120 --time-budget-minutes 7 ...]

Writes ``OUT_DIR/best.pt`` (the best PublicTest accuracy, flip-averaged) and ``OUT_DIR/history.jsonl`` in
the format of the CPU trainer, so ``python -m moodstream.classifier.training export`` reads it here.
Every TrainConfig field is a flag; this command's defaults are the full-width recipe (``RECIPE``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moodstream.classifier.training.__main__ import add_config_flags, config_from_flags
from moodstream.classifier.training.augment import augment
from moodstream.classifier.training.config import TrainConfig
from moodstream.classifier.training.data import class_weights, limit_per_class, load_fer
from moodstream.classifier.training.trainer import (
    INPUT_MEAN,
    INPUT_STD,
    TrainState,
    build_model,
    learning_rate,
)

RECIPE: dict[str, object] = {
    "width": 64,
    "fc_width": 512,
    "epochs": 120,
    "batch_size": 256,
    "lr": 0.1,
    "warmup_epochs": 3.0,
    "time_budget_minutes": 7.0,
    "patience": 1000,
    "standardize": True,
    "camera_augment": True,
    "bf16": True,
    "log_every": 100,
}
"""Full VGG16 width, long cosine schedule, within about 8 minutes on one H200 (data loading included)."""


def choose_device(name: str) -> torch.device:
    """ "auto" -> cuda when available else cpu; "cuda" without a GPU raises ValueError naming the problem."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to torch (use --device auto or cpu)")
    return torch.device(name)


def to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 on ``device``, normalised as the CPU trainer does."""
    x = torch.from_numpy(images).to(device).float().unsqueeze(1) / 255.0
    return (x - INPUT_MEAN) / INPUT_STD


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> float:
    """Flip-averaged top-1 accuracy on device tensors (N, 1, H, W) / (N,)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), 1024):
        batch = x[start : start + 1024]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(torch.cat([batch, torch.flip(batch, dims=[3])])).float()
        probs = torch.softmax(logits, 1).reshape(2, len(batch), -1).mean(0)
        correct += int((probs.argmax(1) == y[start : start + 1024]).sum())
    return correct / len(x)


@dataclass(frozen=True)
class DeviceData:
    """Training and validation faces (N, 1, 48, 48) float32 and labels (N,) int64, all on the device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    weights: torch.Tensor  # (7,) class weights of the loss


def load_to_device(config: TrainConfig, device: torch.device) -> DeviceData:
    """Read both splits of ``config.data`` once and move them to ``device``."""
    train_x, train_y = limit_per_class(*load_fer(Path(config.data), "train"), config.limit_per_class)
    val_x, val_y = limit_per_class(*load_fer(Path(config.data), "validation"), config.limit_per_class)
    return DeviceData(
        train_x=to_device(train_x, device),
        train_y=torch.from_numpy(train_y).to(device),
        val_x=to_device(val_x, device),
        val_y=torch.from_numpy(val_y).to(device),
        weights=torch.from_numpy(class_weights(train_y, config.class_weighting)).to(device),
    )


def _epoch(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    gen: torch.Generator,
    data: DeviceData,
    config: TrainConfig,
    state: TrainState,
) -> float:
    """One shuffled pass (cut short when the time budget ends); returns the last batch's loss."""
    model.train()
    steps = math.ceil(len(data.train_x) / config.batch_size)
    order = torch.randperm(len(data.train_x), generator=gen, device=data.train_x.device)
    started, loss = time.monotonic() - state.elapsed_seconds, torch.zeros(())
    for start in range(0, len(order), config.batch_size):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(config, state.progress(config, steps), state.step, steps)
        index = order[start : start + config.batch_size]
        x = augment(data.train_x[index], gen, camera=config.camera_augment)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = model(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(
            logits.float(), data.train_y[index], weight=data.weights, label_smoothing=config.label_smoothing
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        state.step, state.elapsed_seconds = state.step + 1, time.monotonic() - started
        if state.progress(config, steps) >= 1.0:
            break
    return loss.item()


def train(config: TrainConfig, device: torch.device) -> TrainState:
    """Train on ``device`` until epochs, the time budget or patience; write best.pt and history.jsonl."""
    torch.manual_seed(config.seed)
    torch.backends.cudnn.benchmark = True
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_to_device(config, device)
    model = build_model(config).to(device)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # supported, not in the stubs
    optimiser = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    gen = torch.Generator(device=device).manual_seed(config.seed)
    steps = math.ceil(len(data.train_x) / config.batch_size)
    state = TrainState()
    print(f"{device}: {len(data.train_x)} training, {len(data.val_x)} validation faces", flush=True)
    while (
        state.epoch < config.epochs
        and state.epochs_since_best < config.patience
        and state.progress(config, steps) < 1.0
    ):
        loss = _epoch(model, optimiser, gen, data, config, state)
        state.epoch += 1
        _end_epoch(model, config, state, out, accuracy(model, data.val_x, data.val_y, config.bf16), loss)
    print(f"done: best validation accuracy {state.best_accuracy:.4f} at epoch {state.best_epoch}", flush=True)
    return state


def _end_epoch(
    model: torch.nn.Module,
    config: TrainConfig,
    state: TrainState,
    out: Path,
    val_accuracy: float,
    loss: float,
) -> None:
    """Update the counters, write best.pt when the accuracy improved, append to history.jsonl."""
    if val_accuracy > state.best_accuracy:
        state.best_accuracy, state.best_epoch, state.epochs_since_best = val_accuracy, state.epoch, 0
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        torch.save({"config": config.model_dump(), "model": weights, "state": asdict(state)}, out / "best.pt")
    else:
        state.epochs_since_best += 1
    line = {
        "epoch": state.epoch,
        "last_batch_loss": round(loss, 5),
        "val_accuracy": round(val_accuracy, 5),
        "best_accuracy": round(state.best_accuracy, 5),
        "seconds": round(state.elapsed_seconds, 1),
    }
    with (out / "history.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse flags (TrainConfig fields with RECIPE defaults, plus --device) and train; exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m moodstream.classifier.training.gpu", description=__doc__.split("\n")[0]
    )
    add_config_flags(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"], help="where to train")
    args = vars(parser.parse_args(argv))
    try:
        device = choose_device(args.pop("device"))
    except ValueError as exc:
        parser.error(str(exc))
    config = config_from_flags(args, parser, RECIPE)
    if device.type == "cpu":
        print(
            "no GPU: training on the CPU (slow; the recipe is meant for a GPU)", file=sys.stderr, flush=True
        )
        torch.set_num_threads(config.threads)
    train(config, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
