"""Runtime settings of moodstream, read from the environment.

| variable | meaning | default |
|---|---|---|
| ``MOODSTREAM_REDIS_URL`` | Redis server of the streams; unset: embedded Redis under the data dir | unset |
| ``MOODSTREAM_DATABASE_URL`` | PostgreSQL of the counts; unset: embedded PostgreSQL in the data dir | unset |
| ``MOODSTREAM_DATA_DIR`` | where embedded servers keep their files | ``./.moodstream`` |
| ``MOODSTREAM_STREAM_PREFIX`` | prefix of every Redis key | ``moodstream:`` |
| ``MOODSTREAM_READER_ROLE`` | name of the read-only PostgreSQL role for Grafana | ``moodstream_reader`` |
| ``MOODSTREAM_CONNECT_TIMEOUT`` | seconds to wait for a server before giving up | ``5`` |
| ``MOODSTREAM_LOG_LEVEL`` | DEBUG, INFO, WARNING or ERROR | ``INFO`` |
| ``MOODSTREAM_METRICS_ADDRESS`` | address of each process's /metrics, /healthz, /readyz | ``127.0.0.1`` |
| ``MOODSTREAM_METRICS_PORT`` | their port when ``--metrics-port`` is not given (0: not served) | ``0`` |
| ``MOODSTREAM_CENTRAL_REDIS_URL`` | store-edge mode: central Redis of ``moodstream forward`` | unset |
| ``MOODSTREAM_CENTRAL_STREAM_PREFIX`` | store-edge mode: key prefix on the central Redis | stream prefix |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "MOODSTREAM_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
"""Logging levels moodstream accepts (environment, run options)."""


class SettingsError(ValueError):
    """An environment variable holds a value moodstream cannot use (the message names the variable)."""


class Settings(BaseModel):
    """moodstream's runtime settings; build with ``Settings.from_env()``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Redis URL (redis://, rediss://, unix://); None starts an embedded Redis.",
    )
    database_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="PostgreSQL URL (postgresql://...); None starts an embedded PostgreSQL.",
    )
    data_dir: Path = Field(
        default=Path(".moodstream"), description="Directory of the embedded servers' data and sockets."
    )
    stream_prefix: str = Field(
        default="moodstream:",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key moodstream writes (streams, counters).",
    )
    reader_role: str = Field(
        default="moodstream_reader",
        min_length=1,
        max_length=63,
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="PostgreSQL role that Grafana and analysts use (SELECT on the public views only).",
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to wait for Redis or PostgreSQL to answer."
    )
    log_level: LogLevel = Field(default="INFO", description="Logging level of moodstream processes.")
    metrics_address: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9.:_-]+$",
        description="Address the metrics and health endpoint of each process binds to: 127.0.0.1 (this host "
        "only) unless set; container images set 0.0.0.0.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the metrics and health endpoint when --metrics-port is not given (0: none).",
    )
    central_redis_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Store-edge mode: URL of the central Redis that `moodstream forward` writes results to.",
    )
    central_stream_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Store-edge mode: key prefix on the central Redis (None: the same as stream_prefix).",
    )

    @field_validator("redis_url", "central_redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^postgres(ql)?(\+\w+)?://", value):
            raise ValueError("must start with postgresql:// (or postgresql+psycopg://)")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``MOODSTREAM_*`` variables (empty means unset); SettingsError names a bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper(), "").strip()
            if raw:
                values[name] = raw.upper() if name == "log_level" else raw
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            var = ENV_PREFIX + str(first["loc"][0]).upper() if first["loc"] else "MOODSTREAM_*"
            # the message never echoes the value: it may hold a password
            message = str(first["msg"]).removeprefix("Value error, ")
            raise SettingsError(f"environment variable {var}: {message}") from None
