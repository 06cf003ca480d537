"""Settings from MOODSTREAM_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from moodstream.runtime.settings import Settings, SettingsError


def test_defaults_mean_embedded_servers() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None and settings.database_url is None
    assert settings.data_dir == Path(".moodstream") and settings.stream_prefix == "moodstream:"
    assert settings.reader_role == "moodstream_reader"


def test_values_from_environment() -> None:
    settings = Settings.from_env(
        {
            "MOODSTREAM_REDIS_URL": "redis://:pw@cache:6379/1",
            "MOODSTREAM_DATABASE_URL": "postgresql://w:pw@db/moodstream",
            "MOODSTREAM_DATA_DIR": "/var/lib/moodstream",
            "MOODSTREAM_CONNECT_TIMEOUT": "2.5",
            "MOODSTREAM_LOG_LEVEL": "debug",
            "MOODSTREAM_DATABASE_URL_UNRELATED": "x",
        }
    )
    assert settings.redis_url == "redis://:pw@cache:6379/1"
    assert settings.data_dir == Path("/var/lib/moodstream")
    assert settings.connect_timeout == 2.5 and settings.log_level == "DEBUG"


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"MOODSTREAM_REDIS_URL": "  "}).redis_url is None


BAD = [
    ({"MOODSTREAM_REDIS_URL": "http://x:Secret-pw@h"}, "MOODSTREAM_REDIS_URL"),
    ({"MOODSTREAM_DATABASE_URL": "mysql://u:Secret-pw@h/db"}, "MOODSTREAM_DATABASE_URL"),
    ({"MOODSTREAM_CONNECT_TIMEOUT": "0"}, "MOODSTREAM_CONNECT_TIMEOUT"),
    ({"MOODSTREAM_CONNECT_TIMEOUT": "soon"}, "MOODSTREAM_CONNECT_TIMEOUT"),
    ({"MOODSTREAM_STREAM_PREFIX": "has space"}, "MOODSTREAM_STREAM_PREFIX"),
    ({"MOODSTREAM_READER_ROLE": "Robert'); DROP"}, "MOODSTREAM_READER_ROLE"),
    ({"MOODSTREAM_LOG_LEVEL": "loud"}, "MOODSTREAM_LOG_LEVEL"),
]


@pytest.mark.parametrize(("env", "variable"), BAD, ids=[v for _, v in BAD])
def test_bad_values_name_the_variable_never_the_value(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert variable in str(info.value) and "Secret-pw" not in str(info.value)
