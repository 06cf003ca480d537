"""Uploading the datasource and dashboards to a running Grafana through grafana-client.

Idempotent: the folder is created only when missing, the datasource is created or updated by its
fixed uid, and dashboards are saved with ``overwrite`` under their fixed uids, so pushing twice
leaves one folder, one datasource and one copy of each dashboard.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from moodstream.common.redaction import redact_text, redact_url
from moodstream.runtime.dashboards.build import DATASOURCE_TYPE, DATASOURCE_UID, build_dashboards

logger = logging.getLogger(__name__)

FOLDER_UID: Final[str] = "moodstream"
FOLDER_TITLE: Final[str] = "moodstream"
DATASOURCE_NAME: Final[str] = "moodstream PostgreSQL"


class GrafanaPushError(RuntimeError):
    """Grafana could not be reached or refused a request (message without any secret)."""


def check_grafana_url(url: str, *, insecure: bool = False) -> str:
    """The Grafana base URL if it is safe to send a token and the reader password to; GrafanaPushError
    (the URL shown with its password as ``***``) when it is not.

    https:// is required unless ``insecure`` (an explicit operator choice, e.g. a Grafana on the same host or
    compose network); TLS checks cannot be turned off through the URL (``?verify=...`` is refused).
    """
    shown = redact_url(url)
    scheme, sep, _rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise GrafanaPushError("--url must start with https:// (e.g. https://grafana.example.com)")
    if scheme.lower() not in ("http", "https"):
        raise GrafanaPushError(f"--url must start with http:// or https:// (got {scheme}://...)")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise GrafanaPushError(f"--url {shown} is not a valid URL (host or port unreadable)") from None
    if not host:
        raise GrafanaPushError(f"--url {shown} names no host")
    if any(key.strip().lower() == "verify" for key, _value in parse_qsl(parts.query, keep_blank_values=True)):
        raise GrafanaPushError(
            f"--url {shown}: remove 'verify' from the URL; TLS certificate checks cannot be turned off"
        )
    if scheme.lower() == "http" and not insecure:
        raise GrafanaPushError(
            f"--url {shown} is plain http://: the token and the reader password would cross the network "
            "unencrypted; use https:// or pass --insecure (only for a Grafana on this host or a private "
            "network)"
        )
    return url


class DatasourceSettings(BaseModel):
    """Where Grafana's PostgreSQL datasource connects (as seen from the Grafana server)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("postgres:5432", min_length=1, max_length=255, description="host:port of PostgreSQL")
    database: str = Field("moodstream", min_length=1, max_length=63, description="database name")
    user: str = Field("moodstream_reader", min_length=1, max_length=63, description="read-only role")
    password: str = Field(min_length=1, max_length=1024, repr=False, description="the role's password")
    sslmode: str = Field(
        "disable", pattern="^(disable|require|verify-ca|verify-full)$", description="TLS mode"
    )


def datasource_payload(ds: DatasourceSettings) -> dict[str, Any]:
    """Body of POST/PUT /api/datasources (same settings as the provisioning file)."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": ds.host,
        "user": ds.user,
        "isDefault": False,
        "jsonData": {
            "database": ds.database,
            "sslmode": ds.sslmode,
            "postgresVersion": 1600,
            "timescaledb": False,
            "maxOpenConns": 10,
        },
        "secureJsonData": {"password": ds.password},
    }


@dataclass
class PushResult:
    """What a push did: 'created' or 'updated' per object."""

    folder: str = ""
    datasource: str = "skipped"
    dashboards: dict[str, str] = field(default_factory=dict)


def _status(exc: BaseException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


class GrafanaPusher:
    """Pushes moodstream's folder, datasource and dashboards to one Grafana (explicit ``push()``)."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0, *, insecure: bool = False) -> None:
        """``url`` is checked by ``check_grafana_url`` (GrafanaPushError); ``insecure`` allows http://."""
        from grafana_client.api import GrafanaApi

        self._url = check_grafana_url(url, insecure=insecure)
        self._secrets = [s for s in (token, urlsplit(url).password) if s]
        self._api = GrafanaApi.from_url(url, credential=token, timeout=timeout)

    def push(self, datasource: DatasourceSettings | None) -> PushResult:
        """Ensure folder, datasource (unless None) and dashboards; GrafanaPushError on failure."""
        from grafana_client.client import GrafanaException
        from niquests.exceptions import RequestException

        try:
            result = PushResult(folder=self._ensure_folder())
            if datasource is not None:
                result.datasource = self._upsert_datasource(datasource_payload(datasource))
            for uid, model in build_dashboards().items():
                result.dashboards[uid] = self._save_dashboard(model)
            return result
        except GrafanaException as exc:
            reason = redact_text(str(exc), self._secrets)
            where = redact_url(self._url)
            raise GrafanaPushError(f"Grafana at {where} refused the request: {reason}") from None
        except RequestException as exc:
            reason = type(exc).__name__
            raise GrafanaPushError(f"cannot reach Grafana at {redact_url(self._url)} ({reason})") from None

    def _ensure_folder(self) -> str:
        from grafana_client.client import GrafanaClientError

        try:
            self._api.folder.get_folder(FOLDER_UID)
            return "exists"
        except GrafanaClientError as exc:
            if _status(exc) != 404:
                raise
        self._api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return "created"

    def _upsert_datasource(self, payload: dict[str, Any]) -> str:
        from grafana_client.client import GrafanaClientError

        try:
            self._api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        except GrafanaClientError as exc:
            if _status(exc) != 404:
                raise
            self._api.datasource.create_datasource(payload)
            return "created"
        self._api.datasource.update_datasource_by_uid(DATASOURCE_UID, payload)
        return "updated"

    def _save_dashboard(self, model: dict[str, Any]) -> str:
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "moodstream grafana push",
        }
        response = self._api.dashboard.update_dashboard(body)
        logger.info("dashboard %s saved: %s", model.get("uid"), response.get("status", "?"))
        return str(response.get("status", "success"))
