"""The golden envelope vectors, checked against the Python implementation.

The vectors in tests/vectors/envelopes were written once by
scripts/gen_envelope_vectors.py and are checked in, so a change to
gateway/envelope.py or keys/ that alters a verdict, the PAE bytes or a suite
fails here before it breaks a bank's implementation. Each vector is opened at
its own fixed instant, so nothing here depends on today's date.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.envelope import pae
from keys.signing import suite_for
from ykt.v1 import envelope_pb2

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "envelopes"

EXPECTED_NAMES = {
    "valid-ecdsa-p256-instruction-set",
    "valid-ed25519-result-set",
    "invalid-tampered-payload",
    "invalid-swapped-payload-type",
    "invalid-unexpected-payload-type",
    "invalid-signer-is-tls-key",
    "invalid-signer-from-impostor-ca",
    "invalid-signer-revoked",
    "invalid-unsupported-curve-p384",
    "invalid-ecdsa-signature-not-der",
    "invalid-wrong-audience",
    "invalid-expired",
}


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_envelope_vectors.py"
    spec = importlib.util.spec_from_file_location("gen_envelope_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def load_vectors(directory: Path) -> dict[str, dict[str, Any]]:
    vectors = {}
    for path in sorted(directory.glob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        vectors[vector["name"]] = vector
    return vectors


CHECKED_IN = load_vectors(VECTORS)


def vector_params() -> list[Any]:
    return [pytest.param(v, id=name) for name, v in CHECKED_IN.items()]


def test_the_checked_in_set_has_every_case() -> None:
    assert set(CHECKED_IN) == EXPECTED_NAMES
    reasons = {v["expected"]["reason"] for v in CHECKED_IN.values()}
    assert reasons == {None, "payload-type", "signer", "signature", "header", "expired"}


@pytest.mark.parametrize("vector", vector_params())
def test_python_reaches_the_expected_verdict(vector: dict[str, Any]) -> None:
    expected = vector["expected"]

    verdict = generator.python_verdict(vector, VECTORS)

    assert (verdict.verdict, verdict.reason) == (
        expected["verdict"],
        expected["reason"],
    )
    if expected["verdict"] == "valid":
        assert verdict.signer == expected["signer"]
        assert verdict.subject_id == expected["subject_id"]
        assert verdict.key_id == expected["key_id"]


@pytest.mark.parametrize("vector", vector_params())
def test_pae_reproduces_the_expected_bytes(vector: dict[str, Any]) -> None:
    envelope = generator.envelope_of(vector)

    encoded = pae(envelope.payload_type, envelope.payload)

    assert encoded.hex() == vector["expected"]["pae_hex"]
    kind = envelope.payload_type.encode()
    head = b"YKTv1 %d %s %d " % (len(kind), kind, len(envelope.payload))
    assert encoded == head + envelope.payload


def test_pae_counts_utf8_bytes_not_characters() -> None:
    vector = CHECKED_IN["valid-ecdsa-p256-instruction-set"]
    payload = generator.envelope_of(vector).payload

    characters = len(payload.decode("utf-8", errors="replace"))

    assert characters != len(payload)
    assert f" {len(payload)} ".encode() in bytes.fromhex(vector["expected"]["pae_hex"])


@pytest.mark.parametrize("vector", vector_params())
def test_serialised_envelope_holds_the_listed_fields(vector: dict[str, Any]) -> None:
    decoded = envelope_pb2.SignedEnvelope.FromString(
        base64.b64decode(vector["signed_envelope_b64"])
    )

    assert decoded == generator.envelope_of(vector)


@pytest.mark.parametrize("vector", vector_params())
def test_suites_accept_exactly_the_good_signatures(vector: dict[str, Any]) -> None:
    signature_is_the_fault = vector["expected"]["reason"] == "signature"

    assert generator.suite_accepts(vector) is not signature_is_the_fault


def test_ed25519_signature_is_reproduced_by_the_test_key() -> None:
    vector = CHECKED_IN["valid-ed25519-result-set"]
    assert vector["expected"]["deterministic_signature"] is True
    key = serialization.load_pem_private_key(
        (VECTORS / vector["signer_key_test_only"]).read_bytes(), password=None
    )
    envelope = generator.envelope_of(vector)

    again = suite_for(key).sign(key, pae(envelope.payload_type, envelope.payload))

    assert again == envelope.signature


def test_a_valid_vector_is_refused_after_its_certificate_expires() -> None:
    vector = json.loads(json.dumps(CHECKED_IN["valid-ecdsa-p256-instruction-set"]))
    vector["receiver"]["verify_at"] = "2046-06-01T12:30:00Z"

    verdict = generator.python_verdict(vector, VECTORS)

    assert dataclasses.astuple(verdict)[:2] == ("invalid", "signer")


def test_the_generator_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    generator.generate(out)
    before = (out / "valid-ecdsa-p256-instruction-set.json").read_bytes()

    with pytest.raises(SystemExit, match="--force"):
        generator.main(["--out", str(out)])

    assert (out / "valid-ecdsa-p256-instruction-set.json").read_bytes() == before
    assert generator.main(["--out", str(out), "--force"]) == 0
    assert (out / "valid-ecdsa-p256-instruction-set.json").read_bytes() != before


def test_fresh_vectors_carry_the_checked_in_verdicts(tmp_path: Path) -> None:
    generator.generate(tmp_path / "fresh")

    fresh = load_vectors(tmp_path / "fresh")

    assert {n: v["expected"]["verdict"] for n, v in fresh.items()} == {
        n: v["expected"]["verdict"] for n, v in CHECKED_IN.items()
    }
    assert {n: v["expected"]["reason"] for n, v in fresh.items()} == {
        n: v["expected"]["reason"] for n, v in CHECKED_IN.items()
    }


def test_force_never_deletes_files_the_generator_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's file\n")

    with pytest.raises(SystemExit, match="did not write"):
        generator.main(["--out", str(out), "--force"])

    assert (out / "notes.txt").exists()
