"""The server fixtures themselves: fresh databases and prefixes, cleaned up after."""

from __future__ import annotations

import redis
from sqlalchemy import create_engine, inspect, text


def test_database_url_is_a_fresh_empty_database(database_url: str) -> None:
    engine = create_engine(database_url)
    assert inspect(engine).get_table_names() == []
    with engine.connect() as conn:
        assert str(conn.execute(text("SELECT current_database()")).scalar()).startswith("moodstream_test_")
    engine.dispose()


def test_redis_prefix_is_unique_and_usable(redis_url: str, redis_prefix: str) -> None:
    assert redis_prefix.endswith(":")
    with redis.Redis.from_url(redis_url) as client:
        client.xadd(f"{redis_prefix}frames", {"seq": 1})
        assert client.xlen(f"{redis_prefix}frames") == 1
        assert list(client.scan_iter(match=f"{redis_prefix}*")) == [f"{redis_prefix}frames".encode()]
