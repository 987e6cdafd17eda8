"""``ykt certs``: real certificates from a development CA, in a state folder."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import pytest

from gateway.certs import (
    CertificatePaths,
    add_certs_command,
    render_json,
    render_text,
    report,
    warning_level,
)
from gateway.config import dev_config
from keys.ca import DevelopmentCA
from keys.identity import Identity, Role


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A development state folder, as ``ykt serve --dev`` leaves it."""
    dev_config(tmp_path / "state", "127.0.0.1:0", None)
    return tmp_path / "state"


def _ca(state: Path) -> DevelopmentCA:
    return DevelopmentCA(state / "pki")


def test_warning_levels_at_30_14_and_3_days() -> None:
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def level(**delta: float) -> str:
        return warning_level(now + dt.timedelta(**delta), now)

    assert level(days=-1) == "expired"
    assert level(seconds=0) == "expired"
    assert level(days=2, hours=23) == "within_3_days"
    assert level(days=3) == "within_3_days"
    assert level(days=3, hours=1) == "within_14_days"
    assert level(days=14) == "within_14_days"
    assert level(days=29) == "within_30_days"
    assert level(days=31) == "ok"


def test_every_certificate_is_listed_once_with_role_purpose_and_state(
    state: Path,
) -> None:
    ca = _ca(state)
    now = dt.datetime.now(dt.UTC)
    bank = ca.dev_generate_credentials(
        Identity(Role.BANK, "CQRCB"), not_after=now + dt.timedelta(days=10)
    )
    unit = ca.dev_generate_credentials(
        Identity(Role.UNIT, "500154-U01"),
        not_before=now - dt.timedelta(days=40),
        not_after=now - dt.timedelta(days=2),
    )
    ca.revoke(bank.cert.serial_number)

    rows = report(CertificatePaths.for_state(state), now)

    by_serial = {r.serial_number: r for r in rows}
    # CA, gateway TLS + signing, bank TLS + signing, unit TLS: six, each once.
    assert len(rows) == 6
    bank_row = by_serial[f"{bank.cert.serial_number:x}"]
    assert (bank_row.role, bank_row.organisation, bank_row.purpose) == (
        "bank",
        "CQRCB",
        "tls",
    )
    assert bank_row.revocation == "revoked"
    # Revoked outranks expiry: the certificate is unusable, however long it has.
    assert bank_row.level == "revoked"
    assert "1 revoked" in render_text(rows)
    assert bank_row.days_left == 9
    assert bank.signing_cert is not None
    signing_row = by_serial[f"{bank.signing_cert.serial_number:x}"]
    assert (signing_row.purpose, signing_row.revocation) == ("signing", "not_revoked")
    unit_row = by_serial[f"{unit.cert.serial_number:x}"]
    assert (unit_row.level, unit_row.days_left) == ("expired", -2)
    ca_row = by_serial[f"{ca.cert.serial_number:x}"]
    assert (ca_row.role, ca_row.purpose, ca_row.organisation) == (
        "ca",
        "ca",
        "ykt development CA",
    )
    assert ca_row.sources == "trusted_ca"
    gateway_rows = [r for r in rows if r.role == "gateway"]
    assert {r.sources for r in gateway_rows} == {"gateway,issued"}
    assert {r.purpose for r in gateway_rows} == {"tls", "signing"}
    # Most urgent first.
    assert rows[0].serial_number == unit_row.serial_number


def test_a_stale_crl_makes_revocation_unknown_not_reassuring(state: Path) -> None:
    ca = _ca(state)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)

    rows = report(CertificatePaths.for_state(state), later)

    leaves = [r for r in rows if r.role != "ca"]
    assert leaves
    assert {r.revocation for r in leaves} == {"unknown"}
    assert ca.crl_path.exists()


def test_text_table_and_json_agree(state: Path) -> None:
    rows = report(CertificatePaths.for_state(state), dt.datetime.now(dt.UTC))

    text = render_text(rows)
    data = json.loads(render_json(rows))

    assert text.splitlines()[0].split()[:3] == ["LEVEL", "DAYS", "NOT"]
    assert len(text.strip().splitlines()) == len(rows) + 3
    assert text.strip().endswith(f"{len(rows)} certificates: {len(rows)} ok")
    assert [d["serial_number"] for d in data] == [r.serial_number for r in rows]
    assert {d["level"] for d in data} == {"ok"}
    assert all(int(d["serial_decimal"]) == int(d["serial_number"], 16) for d in data)


def test_the_command_prints_json(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="ykt")
    add_certs_command(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["certs", "--state", str(state), "--json"])
    status = args.func(args)

    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert {d["role"] for d in printed} == {"ca", "gateway"}


def test_a_folder_without_a_ca_is_refused_and_left_alone(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CertificatePaths.for_state(tmp_path / "empty")

    assert not (tmp_path / "empty").exists()
