"""How a gateway is configured: a TOML file in production, a folder in development.

Production (``ykt serve --config FILE``)::

    listen = "0.0.0.0:7443"
    metrics = "127.0.0.1:9464"
    database_url = "postgresql+psycopg://ykt@db/ykt"
    [tls]
    cert = "/etc/ykt/tls/cert.pem"      # server certificate, reloaded on change
    key = "/etc/ykt/tls/key.pem"
    ca_bundle = "/etc/ykt/tls/ca.pem"   # the CAs whose clients we accept
    crls = ["/etc/ykt/tls/crl.pem"]     # one fresh CRL per CA, or calls are refused
    [signing]
    cert = "/etc/ykt/signing.pem"
    key = "/etc/ykt/signing-key.pem"
    [keys]
    directory = "/var/lib/ykt/keys"
    [calendar]
    # State Council holiday schedules for years the packaged calendar lacks.
    schedules = ["/etc/ykt/calendar/2027.toml"]
    [deadlines]
    margin_hours = 6     # an unmet deadline this close is "at risk"
    [retention]
    days = 180           # after a batch closed, before its keys are destroyed
    [exchange]
    # Folders shared with file-connected agent banks, one per bank under here.
    directory = "/srv/ykt/exchange"
    keep_files = false   # true keeps acknowledged files (for inspection only)

Development (``ykt serve --dev --state DIR``) creates a development CA, the
gateway's credentials, a local key store and a SQLite database under DIR.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gateway.store.db import sqlite_url
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role

_logger = logging.getLogger(__name__)

GATEWAY_ORG = "gateway"


@dataclass(frozen=True)
class GatewayConfig:
    listen: str
    metrics: str | None
    database_url: str
    tls_cert: Path
    tls_key: Path
    ca_bundle: Path
    crls: tuple[Path, ...]
    signing_cert: Path
    signing_key: Path
    keys_directory: Path
    dev_ca_directory: Path | None = None
    calendar_schedules: tuple[Path, ...] = ()
    exchange_directory: Path | None = None
    keep_exchange_files: bool = False
    deadline_margin_hours: int | None = None
    retention_days: int | None = None

    @classmethod
    def from_toml(cls, path: Path) -> GatewayConfig:
        data = tomllib.loads(path.read_text())
        base = path.parent
        tls, signing, keys = data["tls"], data["signing"], data["keys"]
        return cls(
            listen=data.get("listen", "0.0.0.0:7443"),
            metrics=data.get("metrics"),
            database_url=data["database_url"],
            tls_cert=base / tls["cert"],
            tls_key=base / tls["key"],
            ca_bundle=base / tls["ca_bundle"],
            crls=tuple(base / p for p in tls["crls"]),
            signing_cert=base / signing["cert"],
            signing_key=base / signing["key"],
            keys_directory=base / keys["directory"],
            calendar_schedules=tuple(
                base / p for p in data.get("calendar", {}).get("schedules", [])
            ),
            exchange_directory=(
                base / data["exchange"]["directory"] if "exchange" in data else None
            ),
            keep_exchange_files=bool(data.get("exchange", {}).get("keep_files", False)),
            deadline_margin_hours=data.get("deadlines", {}).get("margin_hours"),
            retention_days=data.get("retention", {}).get("days"),
        )


def dev_config(
    state: Path,
    listen: str,
    metrics: str | None,
    database_url: str | None = None,
    *,
    keep_exchange_files: bool = False,
) -> GatewayConfig:
    """DEVELOPMENT ONLY: a CA, credentials and SQLite under ``state``."""
    _logger.warning(
        "DEVELOPMENT SETUP: development CA, unencrypted keys on disk, local key "
        "store. Never use --dev in production.",
        extra={"state": str(state)},
    )
    state.mkdir(parents=True, exist_ok=True)
    ca = DevelopmentCA.open_or_create(state / "pki")
    credentials_dir = state / "gateway"
    if not (credentials_dir / "cert.pem").exists():
        credentials = ca.dev_generate_credentials(
            Identity(Role.GATEWAY, GATEWAY_ORG), server_names=("localhost", "127.0.0.1")
        )
        write_credentials(credentials, ca.cert, credentials_dir)
    return GatewayConfig(
        listen=listen,
        metrics=metrics,
        database_url=database_url or sqlite_url(state / "gateway.db"),
        tls_cert=credentials_dir / "cert.pem",
        tls_key=credentials_dir / "key.pem",
        ca_bundle=ca.ca_path,
        crls=(ca.crl_path,),
        signing_cert=credentials_dir / "signing.pem",
        signing_key=credentials_dir / "signing-key.pem",
        keys_directory=state / "keys",
        dev_ca_directory=state / "pki",
        exchange_directory=state / "exchange",
        keep_exchange_files=keep_exchange_files,
    )
