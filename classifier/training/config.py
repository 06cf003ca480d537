"""Hyper-parameters of one VGG-FER training run (stored in every checkpoint)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Fusion = Literal["probabilities", "logits"]
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)
"""How an exported graph combines its views (face, mirror) and an ensemble's networks: the mean of their
softmaxes, or the softmax of the mean of their logits (their geometric mean, renormalised)."""


class TrainConfig(BaseModel):
    """A training run: data, network size, optimiser, schedule, stopping and output."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(
        min_length=1,
        description="fer2013.csv, or a FER-2013 folder root holding train/ and validation/ <emotion>/*.jpg.",
    )
    out_dir: str = Field(
        min_length=1, description="Folder for checkpoints (last.pt, best.pt) and history.jsonl."
    )
    width: int = Field(
        default=16, ge=4, le=64, description="Channels of the first VGG block (VGG16 uses 64)."
    )
    fc_width: int = Field(
        default=256, ge=8, le=4096, description="Units of the two hidden fully connected layers."
    )
    dropout: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="Dropout before each FC layer after the first."
    )
    standardize: bool = Field(
        default=False,
        description="Per-crop standardisation (zero mean, unit std) as the network's first layer.",
    )
    camera_augment: bool = Field(
        default=False,
        description="Camera-domain augmentation: low resolution (16-47 px), blur, gamma, sensor noise.",
    )
    bf16: bool = Field(
        default=False,
        description="bfloat16 autocast of the forward pass (about 2x faster on CPUs with AVX512-BF16).",
    )
    epochs: int = Field(default=30, ge=1, le=1000, description="Epochs of the cosine schedule (upper bound).")
    batch_size: int = Field(default=64, ge=2, le=4096, description="Training mini-batch size.")
    lr: float = Field(default=0.05, gt=0.0, le=10.0, description="Peak SGD learning rate.")
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD Nesterov momentum.")
    weight_decay: float = Field(default=5e-4, ge=0.0, le=0.1, description="L2 weight decay.")
    warmup_epochs: float = Field(
        default=1.0, ge=0.0, le=100.0, description="Linear LR warm-up before the cosine decay."
    )
    time_budget_minutes: float = Field(
        default=0.0,
        ge=0.0,
        le=100000.0,
        description="Wall-clock training budget; the LR schedule ends (and training stops) at whichever of "
        "epochs or this budget comes first. 0 = epochs only.",
    )
    lr_schedule: Literal["cosine", "constant"] = Field(
        default="cosine",
        description="After the warm-up: cosine decay to 0 over the run, or the peak LR throughout (the "
        "sampling phase of weight averaging: keep snapshots, then `average` them).",
    )
    keep_snapshots: bool = Field(
        default=False,
        description="Also write the network after every epoch as epoch_NNN.pt (best.pt layout), the inputs "
        "of `python -m moodstream.classifier.training average`.",
    )
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=1.0, description="Cross-entropy label smoothing.")
    class_weighting: Literal["none", "inverse_sqrt", "inverse"] = Field(
        default="inverse_sqrt",
        description="Loss weight per class from training frequencies (imbalance handling).",
    )
    patience: int = Field(
        default=8, ge=1, le=1000, description="Stop after this many epochs without a better val acc."
    )
    flip_tta: bool = Field(
        default=True, description="Validate and export with horizontal-flip test-time averaging."
    )
    limit_per_class: int = Field(
        default=0, ge=0, description="Use at most this many images per class and split (0 = all)."
    )
    init_from: str | None = Field(
        default=None,
        min_length=1,
        description="Checkpoint (best.pt layout, e.g. from `recover`) whose network weights start the run; "
        "its width and shape must match. None = random initialisation.",
    )
    threads: int = Field(default=2, ge=1, le=256, description="torch.set_num_threads.")
    seed: int = Field(default=0, ge=0, description="Seed of shuffling, augmentation and initialisation.")
    log_every: int = Field(default=50, ge=1, description="Print a progress line every this many batches.")
