"""Where the metrics and health endpoint listens (127.0.0.1 by default, 0.0.0.0 only where the container
files say so) and when a process counts as ready."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from moodstream.common.health import HealthState
from moodstream.runtime.processes import RunOptions
from moodstream.runtime.settings import Settings, SettingsError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_default_address_is_this_host_only_and_the_environment_overrides_it() -> None:
    assert Settings.from_env({}).metrics_address == "127.0.0.1"
    assert RunOptions(redis_url="redis://x", prefix="p:", log_level="INFO").metrics_address == "127.0.0.1"
    settings = Settings.from_env({"MOODSTREAM_METRICS_ADDRESS": "0.0.0.0", "MOODSTREAM_METRICS_PORT": "9400"})
    assert (settings.metrics_address, settings.metrics_port) == ("0.0.0.0", 9400)


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("MOODSTREAM_METRICS_PORT", "70000", "less than or equal to 65535"),
        ("MOODSTREAM_METRICS_PORT", "nine", "valid integer"),
        ("MOODSTREAM_METRICS_ADDRESS", "0.0.0.0; rm -rf /", "should match pattern"),
    ],
)
def test_bad_metrics_settings_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}: .*{words}"):
        Settings.from_env({variable: value})


def test_containers_bind_all_interfaces_explicitly_and_probe_readiness() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.count("ENV MOODSTREAM_METRICS_ADDRESS=0.0.0.0") == 2  # both targets
    compose = YAML(typ="safe").load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    for name in ("ingest", "detector", "classifier", "aggregator"):
        service = compose["services"][name]
        assert service["environment"]["MOODSTREAM_METRICS_ADDRESS"] == "0.0.0.0"
        port = service["environment"]["MOODSTREAM_METRICS_PORT"]
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert "ports" not in service  # reachable in the compose network, not published on the host


def test_ready_after_a_beat_not_before_not_after_trouble_nor_when_stale() -> None:
    health = HealthState(stale_after_s=0.2)
    assert not health.readiness().ready and "starting" in health.readiness().reason
    health.beat("detector: reading frames")
    verdict = health.readiness()
    assert verdict.ready and verdict.reason == "detector: reading frames"
    health.trouble("detector: Redis unreachable (ConnectionError)")
    assert not health.readiness().ready and "Redis unreachable" in health.readiness().reason
    health.beat()
    assert health.readiness().ready
    # two loops (the aggregator's counts and losses): one's beat does not clear the other's trouble
    health.trouble("aggregator: a server is unreachable", source="aggregator")
    health.beat(source="losses")
    assert not health.readiness().ready
    health.beat(source="aggregator")
    assert health.readiness().ready
    time.sleep(0.3)
    stale = health.readiness()
    assert not stale.ready and "no progress" in stale.reason
    with pytest.raises(ValueError, match="stale_after_s"):
        HealthState(stale_after_s=0)
