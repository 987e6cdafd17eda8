"""The production configuration file: every section reaches the gateway."""

from __future__ import annotations

from pathlib import Path

from gateway.config import GatewayConfig

CONFIG = """
listen = "0.0.0.0:7443"
metrics = "127.0.0.1:9464"
database_url = "postgresql+psycopg://ykt@db/ykt"
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
ca_bundle = "tls/ca.pem"
crls = ["tls/crl.pem"]
[signing]
cert = "signing.pem"
key = "signing-key.pem"
[keys]
directory = "keys"
[calendar]
schedules = ["calendar/2027.toml"]
[deadlines]
margin_hours = 4
[retention]
days = 365
[exchange]
directory = "exchange"
keep_files = true
"""


def test_every_section_of_the_configuration_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)

    config = GatewayConfig.from_toml(path)

    assert config.listen == "0.0.0.0:7443"
    assert config.crls == (tmp_path / "tls" / "crl.pem",)
    assert config.signing_key == tmp_path / "signing-key.pem"
    assert config.calendar_schedules == (tmp_path / "calendar" / "2027.toml",)
    assert config.deadline_margin_hours == 4
    assert config.retention_days == 365
    assert config.exchange_directory == tmp_path / "exchange"
    assert config.keep_exchange_files is True
    assert config.dev_ca_directory is None


def test_optional_sections_may_be_left_out(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.split("[calendar]")[0])

    config = GatewayConfig.from_toml(path)

    assert config.calendar_schedules == ()
    assert config.deadline_margin_hours is None
    assert config.exchange_directory is None
    assert config.keep_exchange_files is False
