"""Capped exponential backoff with jitter for reconnecting camera sources."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class BackoffPolicy(BaseModel):
    """Delay before reconnect attempt n (0-based): min(cap, base * 2**n) scaled by 1 +- jitter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_s: float = Field(default=0.5, gt=0, le=60, description="Delay before the first retry, seconds.")
    cap_s: float = Field(default=30.0, gt=0, le=3600, description="Longest delay between retries, seconds.")
    jitter: float = Field(default=0.2, ge=0, lt=1, description="Relative random spread of each delay.")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based); never above cap_s * (1 + jitter)."""
        raw = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 62))
        spread: float = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, raw * (1 + spread))
