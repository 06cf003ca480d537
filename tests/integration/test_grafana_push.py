"""`moodstream grafana push` against a local HTTP server that records requests and keeps Grafana-like state.

Grafana itself cannot be installed here; the server answers the few endpoints the push uses the way
Grafana's HTTP API does (404 for a missing folder/datasource, 401 for a bad token).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("grafana_client", reason="install the grafana extra: pip install -e .[grafana]")

from moodstream.cli.app import build_app

TOKEN = "glsa_test_token_123"
READER_PASSWORD = "r3ader:p@ss"
DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


@dataclass
class Recorded:
    method: str
    path: str
    auth: str | None
    body: Any


@dataclass
class GrafanaState:
    requests: list[Recorded] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _reply(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization")
            state.requests.append(Recorded(self.command, self.path, auth, body))
            if auth != f"Bearer {TOKEN}":
                return self._reply(401, {"message": "invalid API key"})
            self._route(body)

        def _route(self, body: Any) -> None:
            method, path = self.command, self.path
            if method == "GET" and path.startswith("/api/folders/"):
                uid = path.rsplit("/", 1)[1]
                found = state.folders.get(uid)
                return self._reply(200, found) if found else self._reply(404, {"message": "folder not found"})
            if method == "POST" and path == "/api/folders":
                state.folders[body["uid"]] = body
                return self._reply(200, body)
            if method == "GET" and path.startswith("/api/datasources/uid/"):
                found = state.datasources.get(path.rsplit("/", 1)[1])
                return (
                    self._reply(200, found)
                    if found
                    else self._reply(404, {"message": "Data source not found"})
                )
            if method == "POST" and path == "/api/datasources":
                state.datasources[body["uid"]] = body
                return self._reply(200, {"message": "Datasource added", "datasource": body})
            if method == "PUT" and path.startswith("/api/datasources/uid/"):
                state.datasources[path.rsplit("/", 1)[1]] = body
                return self._reply(200, {"message": "Datasource updated"})
            if method == "POST" and path == "/api/dashboards/db":
                uid = body["dashboard"]["uid"]
                state.dashboards[uid] = body
                return self._reply(200, {"status": "success", "uid": uid, "version": 1})
            return self._reply(404, {"message": f"no route {method} {path}"})

        do_GET = do_POST = do_PUT = _handle

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _push(
    url: str, monkeypatch: pytest.MonkeyPatch, *extra: str, token: str | None = TOKEN
) -> tuple[int, str]:
    if token is None:
        monkeypatch.delenv("MOODSTREAM_GRAFANA_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MOODSTREAM_GRAFANA_TOKEN", token)
    monkeypatch.setenv("MOODSTREAM_READER_PASSWORD", READER_PASSWORD)
    result = CliRunner().invoke(
        build_app(), ["grafana", "push", "--url", url, "--db-host", "db:5432", "--insecure", *extra]
    )
    return result.exit_code, result.stdout + result.stderr


def test_push_creates_folder_datasource_and_dashboards(
    grafana: tuple[str, GrafanaState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = grafana
    code, out = _push(url, monkeypatch)
    assert code == 0, out
    assert [(r.method, r.path) for r in state.requests] == [
        ("GET", "/api/folders/moodstream"),
        ("POST", "/api/folders"),
        ("GET", "/api/datasources/uid/moodstream-postgres"),
        ("POST", "/api/datasources"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert {r.auth for r in state.requests} == {f"Bearer {TOKEN}"}
    ds = state.datasources["moodstream-postgres"]
    assert ds["type"] == "grafana-postgresql-datasource" and ds["url"] == "db:5432"
    assert ds["user"] == "moodstream_reader" and ds["jsonData"]["database"] == "moodstream"
    assert ds["secureJsonData"] == {"password": READER_PASSWORD}
    for uid, saved in state.dashboards.items():
        committed = json.loads((DASHBOARD_DIR / f"{uid}.json").read_text(encoding="utf-8"))
        assert saved["dashboard"] == {**committed, "id": None}
        assert saved["overwrite"] is True and saved["folderUid"] == "moodstream"
    assert set(state.dashboards) == {"moodstream-satisfaction", "moodstream-camera-health"}
    assert READER_PASSWORD not in out and TOKEN not in out


def test_second_push_is_idempotent(
    grafana: tuple[str, GrafanaState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = grafana
    assert _push(url, monkeypatch)[0] == 0
    first = {uid: body["dashboard"] for uid, body in state.dashboards.items()}
    state.requests.clear()
    code, out = _push(url, monkeypatch)
    assert code == 0, out
    assert [(r.method, r.path) for r in state.requests] == [
        ("GET", "/api/folders/moodstream"),
        ("GET", "/api/datasources/uid/moodstream-postgres"),
        ("PUT", "/api/datasources/uid/moodstream-postgres"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert len(state.folders) == 1 and len(state.datasources) == 1
    assert {uid: body["dashboard"] for uid, body in state.dashboards.items()} == first


def test_no_datasource_pushes_dashboards_only(
    grafana: tuple[str, GrafanaState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = grafana
    code, out = _push(url, monkeypatch, "--no-datasource")
    assert code == 0, out
    assert not state.datasources and not any("datasources" in r.path for r in state.requests)


@pytest.mark.parametrize(
    ("url_kind", "token", "message"),
    [
        ("live", "wrong-token", "refused the request"),
        ("live", None, "set MOODSTREAM_GRAFANA_TOKEN"),
        ("closed", TOKEN, "cannot reach Grafana at http://127.0.0.1:1"),
        ("ftp", TOKEN, "--url must start with http:// or https://"),
    ],
)
def test_push_failures_are_one_clear_line(
    grafana: tuple[str, GrafanaState],
    monkeypatch: pytest.MonkeyPatch,
    url_kind: str,
    token: str | None,
    message: str,
) -> None:
    live_url, _state = grafana
    url = {"live": live_url, "closed": "http://127.0.0.1:1", "ftp": "ftp://grafana"}[url_kind]
    code, out = _push(url, monkeypatch, "--timeout", "3", token=token)
    assert code == 1
    assert message in out and "Traceback" not in out
    assert READER_PASSWORD not in out and (token is None or token not in out)


URL_PASSWORD = "Gr4fPw-q"

UNSAFE_URLS: dict[str, tuple[str, list[str], str]] = {
    # case: (--url, extra options, what the one-line error says)
    "http without --insecure": ("{live}", [], "plain http://"),
    "verify=false over https": ("https://127.0.0.1:1/?verify=false", [], "remove 'verify'"),
    "verify=0 with --insecure": ("{live}/?a=1&Verify=0", ["--insecure"], "remove 'verify'"),
    "no scheme, user:password": (f"admin:{URL_PASSWORD}@grafana:3000", [], "--url must start with https://"),
    "bad port, user:password": (f"https://admin:{URL_PASSWORD}@grafana:30x0", [], "not a valid URL"),
    "no host, user:password": (f"https://admin:{URL_PASSWORD}@/grafana", [], "names no host"),
}


@pytest.mark.parametrize(("url", "extra", "message"), UNSAFE_URLS.values(), ids=UNSAFE_URLS.keys())
def test_unsafe_or_bad_urls_are_refused_before_any_request(
    grafana: tuple[str, GrafanaState], url: str, extra: list[str], message: str
) -> None:
    live_url, state = grafana
    env = {"MOODSTREAM_GRAFANA_TOKEN": TOKEN, "MOODSTREAM_READER_PASSWORD": READER_PASSWORD}
    argv = ["grafana", "push", "--url", url.format(live=live_url), *extra]
    result = CliRunner().invoke(build_app(), argv, env=env)
    out = result.stdout + result.stderr
    assert result.exit_code == 1, out
    assert message in result.stderr and "Traceback" not in out
    assert URL_PASSWORD not in out and TOKEN not in out and READER_PASSWORD not in out
    assert state.requests == [], "nothing may be sent to an unsafe URL"


def test_missing_reader_password(grafana: tuple[str, GrafanaState], monkeypatch: pytest.MonkeyPatch) -> None:
    url, state = grafana
    monkeypatch.setenv("MOODSTREAM_GRAFANA_TOKEN", TOKEN)
    monkeypatch.delenv("MOODSTREAM_READER_PASSWORD", raising=False)
    result = CliRunner().invoke(build_app(), ["grafana", "push", "--url", url, "--insecure"])
    assert result.exit_code == 1 and "MOODSTREAM_READER_PASSWORD" in result.stderr
    assert state.requests == []
