"""The TLS scan: a real gateway on port 0, scanned by sslyze from outside.

``scripts/tls_scan.py`` installs sslyze into its own virtualenv on first use.
The scan test skips, with the installer's reason, only when that install
fails (exit code 3, e.g. no network); any other failure fails the test. The
policy itself (``evaluate``) is also tested on made-up scan summaries, so a
policy that can never say "fail" is caught without the scanner.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from keys.identity import Role
from tests.conftest import Running

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "tls_scan.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tls_scan", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tls_scan = _load_script()

COMPLIANT: dict[str, Any] = {
    "target": "127.0.0.1:1",
    "scanner": "made up",
    "accepted": {
        "SSLv2": [],
        "SSLv3": [],
        "TLSv1.0": [],
        "TLSv1.1": [],
        "TLSv1.2": [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ],
        "TLSv1.3": ["TLS_AES_128_GCM_SHA256"],
    },
    "client_auth": "REQUIRED",
}


def _with(**changes: Any) -> dict[str, Any]:
    scan = json.loads(json.dumps(COMPLIANT))
    for key, value in changes.items():
        if key in scan["accepted"]:
            scan["accepted"][key] = value
        else:
            scan[key] = value
    return scan


class TestPolicy:
    def test_a_compliant_summary_passes(self) -> None:
        assert tls_scan.evaluate(COMPLIANT) == []

    @pytest.mark.parametrize(
        ("changes", "complaint"),
        [
            pytest.param(
                {"TLSv1.0": ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]},
                "TLSv1.0 is accepted",
                id="tls1.0-offered",
            ),
            pytest.param(
                {"TLSv1.1": ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]},
                "TLSv1.1 is accepted",
                id="tls1.1-offered",
            ),
            pytest.param(
                {"SSLv3": ["TLS_RSA_WITH_RC4_128_SHA"]},
                "SSLv3 is accepted",
                id="ssl3-offered",
            ),
            pytest.param(
                {"TLSv1.2": ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"]},
                "weak suites",
                id="tls1.2-cbc",
            ),
            pytest.param(
                {"TLSv1.2": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]},
                "weak suites",
                id="tls1.2-static-rsa",
            ),
            pytest.param({"TLSv1.3": []}, "TLS 1.3 is not offered", id="no-tls1.3"),
            pytest.param(
                {"client_auth": "OPTIONAL"}, "not REQUIRED", id="client-cert-optional"
            ),
        ],
    )
    def test_each_weakness_is_reported(
        self, changes: dict[str, Any], complaint: str
    ) -> None:
        violations = tls_scan.evaluate(_with(**changes))
        assert len(violations) == 1
        assert complaint in violations[0]


def test_gateway_endpoint_meets_the_tls_policy(
    running: Running, tmp_path: Path
) -> None:
    credentials = running.client(Role.BANK, "CQRCB")
    summary = tmp_path / "scan.json"

    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--host",
            "127.0.0.1",
            "--port",
            str(running.gateway.port),
            "--client-cert",
            str(credentials.directory / "cert.pem"),
            "--client-key",
            str(credentials.directory / "key.pem"),
            "--ca",
            str(running.ca.ca_path),
            "--json",
            str(summary),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    if completed.returncode == tls_scan.EXIT_SCANNER_UNAVAILABLE:
        pytest.skip(f"sslyze could not be installed: {completed.stderr.strip()}")
    print(completed.stdout)
    assert completed.returncode == tls_scan.EXIT_OK, completed.stdout + completed.stderr
    scan = json.loads(summary.read_text())
    assert scan["violations"] == []
    for version in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert scan["accepted"][version] == [], version
    assert scan["accepted"]["TLSv1.2"], "TLS 1.2 should still be offered"
    assert all(tls_scan.is_strong_tls12_suite(s) for s in scan["accepted"]["TLSv1.2"])
    assert scan["accepted"]["TLSv1.3"]
    assert scan["client_auth"] == "REQUIRED"
