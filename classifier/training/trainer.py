"""The training loop: SGD, warm-up + cosine LR, class-weighted loss, resumable checkpoints, early stopping.

Checkpoints in ``out_dir``: ``last.pt`` (after every epoch: model, optimiser, schedule, RNG, counters;
what ``resume`` continues from), ``best.pt`` (the best validation accuracy so far; what export reads)
and, with ``keep_snapshots``, ``epoch_NNN.pt`` after every epoch (what ``average`` reads).
``history.jsonl`` gets one line per epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moodstream.classifier.training.augment import augment
from moodstream.classifier.training.config import TrainConfig
from moodstream.classifier.training.data import class_weights, limit_per_class, load_fer
from moodstream.classifier.training.model import VggFer

INPUT_MEAN = 0.5
"""Normalisation of the VGG input: x = (pixel / 255 - INPUT_MEAN) / INPUT_STD."""
INPUT_STD = 0.25


@dataclass
class TrainState:
    """Counters that survive a resume."""

    epoch: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = -1
    epochs_since_best: int = 0
    step: int = 0
    elapsed_seconds: float = 0.0

    def progress(self, config: TrainConfig, steps_per_epoch: int) -> float:
        """Fraction of the run done: the larger of steps / (epochs * steps) and elapsed / time budget."""
        by_steps = self.step / (config.epochs * steps_per_epoch)
        if config.time_budget_minutes <= 0:
            return by_steps
        return max(by_steps, self.elapsed_seconds / (config.time_budget_minutes * 60))


def normalise(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 normalised with INPUT_MEAN / INPUT_STD."""
    x = torch.from_numpy(images).float().unsqueeze(1) / 255.0
    return (x - INPUT_MEAN) / INPUT_STD


def build_model(config: TrainConfig) -> VggFer:
    """The network this config describes."""
    return VggFer(
        width=config.width, fc_width=config.fc_width, dropout=config.dropout, standardize=config.standardize
    )


def learning_rate(config: TrainConfig, progress: float, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to 0 as ``progress`` goes 0 -> 1
    (``lr_schedule="cosine"``) or the peak LR until the run ends (``"constant"``)."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, flip_tta: bool) -> float:
    """Top-1 accuracy of ``model`` on (N, H, W) uint8 images, optionally averaging with the flipped face."""
    model.eval()
    correct = 0
    for start in range(0, len(images), 256):
        x = normalise(images[start : start + 256])
        probs = torch.softmax(model(x), dim=1)
        if flip_tta:
            probs = probs + torch.softmax(model(torch.flip(x, dims=[3])), dim=1)
        correct += int((probs.argmax(1).numpy() == labels[start : start + 256]).sum())
    return correct / len(images)


class Trainer:
    """One training run; ``run()`` trains (resuming from last.pt when asked) and returns the final state."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        self.resume = resume

    def _log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def run(self) -> TrainState:
        """Train until ``epochs``, the time budget or early stopping; returns the final state."""
        cfg = self.config
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        train_x, train_y = limit_per_class(*load_fer(Path(cfg.data), "train"), cfg.limit_per_class)
        val_x, val_y = limit_per_class(*load_fer(Path(cfg.data), "validation"), cfg.limit_per_class)
        self._log(f"data: {len(train_x)} training, {len(val_x)} validation images from {cfg.data}")
        model = build_model(cfg)
        if cfg.init_from is not None and not (self.resume and (self.out / "last.pt").is_file()):
            start = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
            model.load_state_dict(start["model"])
            self._log(f"network initialised from {cfg.init_from}")
        optimiser = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
        gen = torch.Generator().manual_seed(cfg.seed)
        state = TrainState()
        if self.resume and (self.out / "last.pt").is_file():
            state = self._load(model, optimiser, gen)
            self._log(f"resumed from {self.out / 'last.pt'} after epoch {state.epoch}")
        weights = torch.from_numpy(class_weights(train_y, cfg.class_weighting))
        steps = math.ceil(len(train_x) / cfg.batch_size)
        while (
            state.epoch < cfg.epochs
            and state.epochs_since_best < cfg.patience
            and state.progress(cfg, steps) < 1.0
        ):
            started = time.monotonic()
            loss = self._epoch(model, optimiser, gen, train_x, train_y, weights, state)
            accuracy = evaluate(model, val_x, val_y, cfg.flip_tta)
            state.epoch += 1
            improved = accuracy > state.best_accuracy
            if improved:
                state.best_accuracy, state.best_epoch, state.epochs_since_best = accuracy, state.epoch, 0
            else:
                state.epochs_since_best += 1
            seconds = time.monotonic() - started
            self._save(model, optimiser, gen, state, improved)
            self._record(state, loss, accuracy, seconds)
        self._log(f"done: best validation accuracy {state.best_accuracy:.4f} at epoch {state.best_epoch}")
        return state

    def _epoch(
        self,
        model: torch.nn.Module,
        optimiser: torch.optim.Optimizer,
        gen: torch.Generator,
        images: np.ndarray,
        labels: np.ndarray,
        weights: torch.Tensor,
        state: TrainState,
    ) -> float:
        """One pass over the shuffled training set, cut short when the time budget runs out; mean loss."""
        cfg = self.config
        model.train()
        order = torch.randperm(len(images), generator=gen).numpy()
        steps = math.ceil(len(order) / cfg.batch_size)
        total, batches, seen, started, tick = 0.0, 0, 0, time.monotonic(), time.monotonic()
        for batches, start in enumerate(range(0, len(order), cfg.batch_size), start=1):
            lr = learning_rate(cfg, state.progress(cfg, steps), state.step, steps)
            for group in optimiser.param_groups:
                group["lr"] = lr
            index = order[start : start + cfg.batch_size]
            x = augment(normalise(images[index]), gen, camera=cfg.camera_augment)
            y = torch.from_numpy(labels[index])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, weight=weights, label_smoothing=cfg.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item()
            seen += len(index)
            now = time.monotonic()
            state.step, state.elapsed_seconds, tick = state.step + 1, state.elapsed_seconds + now - tick, now
            if batches % cfg.log_every == 0:
                self._log(
                    f"epoch {state.epoch + 1} batch {batches}/{steps} loss {total / batches:.4f} lr {lr:.4f} "
                    f"{seen / (now - started):.0f} img/s progress {state.progress(cfg, steps):.3f}"
                )
            if state.progress(cfg, steps) >= 1.0 and batches < steps:
                self._log("time budget used up: ending the epoch early")
                break
        return total / max(batches, 1)

    def _record(self, state: TrainState, loss: float, accuracy: float, seconds: float) -> None:
        line = {
            "epoch": state.epoch,
            "train_loss": round(loss, 5),
            "val_accuracy": round(accuracy, 5),
            "best_accuracy": round(state.best_accuracy, 5),
            "seconds": round(seconds, 1),
        }
        with (self.out / "history.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        self._log(
            f"epoch {state.epoch}/{self.config.epochs}: loss {loss:.4f} val acc {accuracy:.4f} "
            f"(best {state.best_accuracy:.4f} @ {state.best_epoch}) {seconds:.0f}s"
        )

    def _save(
        self,
        model: torch.nn.Module,
        optimiser: torch.optim.Optimizer,
        gen: torch.Generator,
        state: TrainState,
        improved: bool,
    ) -> None:
        """Write last.pt atomically (everything resume needs) and best.pt when the accuracy improved."""
        checkpoint = {
            "config": self.config.model_dump(),
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "generator": gen.get_state(),
            "state": asdict(state),
        }
        tmp = self.out / "last.pt.tmp"
        torch.save(checkpoint, tmp)
        tmp.replace(self.out / "last.pt")
        network = {key: checkpoint[key] for key in ("config", "model", "state")}
        if improved:
            torch.save(network, self.out / "best.pt")
        if self.config.keep_snapshots:
            torch.save(network, self.out / f"epoch_{state.epoch:03d}.pt")

    def _load(
        self, model: torch.nn.Module, optimiser: torch.optim.Optimizer, gen: torch.Generator
    ) -> TrainState:
        """Restore model, optimiser, RNG and counters from last.pt."""
        checkpoint = torch.load(self.out / "last.pt", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        gen.set_state(checkpoint["generator"])
        return TrainState(**checkpoint["state"])
