"""Signed exchange files: atomic writes, completeness, verification, golden files.

The signature tests use the real gateway's CA, CRL and signing key
(the ``running`` fixture), and bank credentials issued by that CA.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from connectors import exchange_files as ef
from connectors import fixed_width as fw
from connectors import iso20022 as iso
from gateway.errors import EnvelopeError, UntrustedSignerError
from keys.ca import DevelopmentCA
from keys.identity import Identity, Role
from keys.signing import Signer
from keys.trust import TrustStore
from tests.conftest import Running
from ykt.v1 import envelope_pb2, exchange_pb2

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
GATEWAY = Identity(Role.GATEWAY, "gateway")
BANK = Identity(Role.BANK, "CQRCB")


def load_gen_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_golden", ROOT / "scripts" / "gen_golden.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Parties:
    gateway: Signer
    bank: Signer
    other_bank: Signer
    bank_tls: Signer
    trust: TrustStore
    running: Running


def signer_for(running: Running, identity: Identity) -> Signer:
    credentials = running.ca.dev_generate_credentials(identity)
    assert credentials.signing_cert is not None
    assert credentials.signing_key is not None
    return Signer(credentials.signing_cert, credentials.signing_key)


@pytest.fixture
def exchange(tmp_path: Path) -> Path:
    """An empty exchange directory (tmp_path also holds the gateway's state)."""
    directory = tmp_path / "exchange"
    directory.mkdir()
    return directory


@pytest.fixture
def parties(running: Running) -> Parties:
    config = running.config
    bank_credentials = running.ca.dev_generate_credentials(BANK)
    assert bank_credentials.signing_cert is not None
    assert bank_credentials.signing_key is not None
    return Parties(
        gateway=Signer.load(config.signing_cert, config.signing_key),
        bank=Signer(bank_credentials.signing_cert, bank_credentials.signing_key),
        other_bank=signer_for(running, Identity(Role.BANK, "PSBC")),
        bank_tls=Signer(bank_credentials.cert, bank_credentials.key),
        trust=TrustStore(
            config.ca_bundle,
            config.crls,
            clock=lambda: dt.datetime.now(dt.UTC),
        ),
        running=running,
    )


def instruction_file() -> bytes:
    module = load_gen_golden()
    return bytes(module.build_golden()["instructions.txt"])


# -- atomic writing and completeness -----------------------------------------------


def test_write_then_list_then_read(exchange: Path, parties: Parties) -> None:
    data = instruction_file()

    ef.write_signed(
        exchange,
        "set-1.txt",
        data,
        signer=parties.gateway,
        payload_type=ef.FIXED_WIDTH_INSTRUCTIONS,
    )

    assert ef.list_complete(exchange) == ["set-1.txt"]
    assert sorted(os.listdir(exchange)) == ["set-1.txt", "set-1.txt.sig"]
    verified = ef.read_verified(
        exchange,
        "set-1.txt",
        payload_type=ef.FIXED_WIDTH_INSTRUCTIONS,
        trust=parties.trust,
        expected_signer=GATEWAY,
    )
    assert verified.data == data
    assert verified.signer == GATEWAY
    parsed = fw.load_instruction_set(io.BytesIO(verified.data))
    assert len(parsed.instructions) == 3


def test_signature_envelope_has_an_empty_payload(
    exchange: Path, parties: Parties
) -> None:
    ef.write_signed(
        exchange, "a.xml", b"<x/>", signer=parties.bank, payload_type=ef.PAIN002
    )

    envelope = envelope_pb2.SignedEnvelope.FromString(
        (exchange / "a.xml.sig").read_bytes()
    )

    assert envelope.payload == b""
    assert envelope.payload_type == ef.PAIN002
    assert envelope.signer_certificate == parties.bank.cert_der


def test_files_without_signature_and_temp_files_are_not_listed(
    exchange: Path,
) -> None:
    (exchange / "waiting.txt").write_bytes(b"data")
    (exchange / ".next.txt.tmp").write_bytes(b"half")
    (exchange / ".next.txt.sig.tmp").write_bytes(b"half")
    (exchange / "orphan.txt.sig").write_bytes(b"sig")
    (exchange / "done.txt").write_bytes(b"data")
    (exchange / "done.txt.sig").write_bytes(b"sig")
    (exchange / "sub").mkdir()
    (exchange / "sub.sig").write_bytes(b"sig")

    assert ef.list_complete(exchange) == ["done.txt"]


def test_a_complete_file_is_never_overwritten(exchange: Path, parties: Parties) -> None:
    ef.write_signed(
        exchange, "r.txt", b"one", signer=parties.bank, payload_type=ef.PAIN002
    )

    with pytest.raises(FileExistsError):
        ef.write_signed(
            exchange, "r.txt", b"two", signer=parties.bank, payload_type=ef.PAIN002
        )

    assert (exchange / "r.txt").read_bytes() == b"one"


def test_an_unsigned_leftover_is_replaced(exchange: Path, parties: Parties) -> None:
    (exchange / "r.txt").write_bytes(b"left by a crash")

    ef.write_signed(
        exchange, "r.txt", b"fresh", signer=parties.bank, payload_type=ef.PAIN002
    )

    assert (exchange / "r.txt").read_bytes() == b"fresh"
    assert not any(name.endswith(".tmp") for name in os.listdir(exchange))


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/b.txt", ".hidden", "x.sig", "x.tmp", "", "a\n"]
)
def test_unsafe_names_are_refused(exchange: Path, parties: Parties, name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        ef.write_signed(
            exchange, name, b"x", signer=parties.bank, payload_type=ef.PAIN002
        )

    assert os.listdir(exchange) == []


def test_delete_acknowledged_removes_both(exchange: Path, parties: Parties) -> None:
    ef.write_signed(
        exchange, "r.txt", b"x", signer=parties.bank, payload_type=ef.PAIN002
    )

    ef.delete_acknowledged(exchange, "r.txt")
    ef.delete_acknowledged(exchange, "r.txt")

    assert os.listdir(exchange) == []


# -- verification refusals ------------------------------------------------------------


def _write(exchange: Path, signer: Signer, data: bytes = b"H...") -> None:
    ef.write_signed(
        exchange, "f.txt", data, signer=signer, payload_type=ef.FIXED_WIDTH_RESULTS
    )


def _read(exchange: Path, parties: Parties, **overrides: object) -> ef.VerifiedFile:
    arguments: dict[str, object] = {
        "payload_type": ef.FIXED_WIDTH_RESULTS,
        "trust": parties.trust,
        "expected_signer": BANK,
    }
    arguments.update(overrides)
    return ef.read_verified(exchange, "f.txt", **arguments)  # type: ignore[arg-type]


def test_tampered_bytes_are_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank, b"PAID 100")
    (exchange / "f.txt").write_bytes(b"PAID 900")

    with pytest.raises(EnvelopeError, match="does not verify"):
        _read(exchange, parties)


def test_appended_bytes_are_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank, b"PAID 100")
    with (exchange / "f.txt").open("ab") as handle:
        handle.write(b"\r\n")

    with pytest.raises(EnvelopeError, match="does not verify"):
        _read(exchange, parties)


def test_wrong_signer_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.other_bank)

    with pytest.raises(UntrustedSignerError, match="expected party"):
        _read(exchange, parties)


def test_missing_signature_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank)
    (exchange / "f.txt.sig").unlink()

    with pytest.raises(ef.IncompleteFileError):
        _read(exchange, parties)


def test_missing_file_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank)
    (exchange / "f.txt").unlink()

    with pytest.raises(ef.IncompleteFileError):
        _read(exchange, parties)


def test_wrong_payload_type_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank)

    with pytest.raises(EnvelopeError, match="payload type"):
        _read(exchange, parties, payload_type=ef.FIXED_WIDTH_INSTRUCTIONS)


def test_a_tls_certificate_is_not_a_signer(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank_tls)

    with pytest.raises(UntrustedSignerError):
        _read(exchange, parties)


def test_a_revoked_signer_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank)
    parties.running.ca.revoke(parties.bank.cert.serial_number)

    with pytest.raises(UntrustedSignerError, match="revoked"):
        _read(exchange, parties)


def test_a_signature_from_another_ca_is_refused(
    exchange: Path, parties: Parties
) -> None:
    rogue = DevelopmentCA.open_or_create(exchange.parent / "rogue-ca")
    credentials = rogue.dev_generate_credentials(BANK)
    assert credentials.signing_cert is not None
    assert credentials.signing_key is not None
    _write(exchange, Signer(credentials.signing_cert, credentials.signing_key))

    with pytest.raises(UntrustedSignerError):
        _read(exchange, parties)


def test_a_signature_with_a_payload_is_refused(
    exchange: Path, parties: Parties
) -> None:
    _write(exchange, parties.bank)
    envelope = envelope_pb2.SignedEnvelope.FromString(
        (exchange / "f.txt.sig").read_bytes()
    )
    envelope.payload = b"smuggled"
    (exchange / "f.txt.sig").write_bytes(envelope.SerializeToString())

    with pytest.raises(EnvelopeError, match="empty payload"):
        _read(exchange, parties)


def test_a_garbled_signature_file_is_refused(exchange: Path, parties: Parties) -> None:
    _write(exchange, parties.bank)
    (exchange / "f.txt.sig").write_bytes(b"\xff\xff\xff not protobuf")

    with pytest.raises(EnvelopeError):
        _read(exchange, parties)


def test_an_oversized_signature_file_is_refused(
    exchange: Path, parties: Parties
) -> None:
    _write(exchange, parties.bank)
    (exchange / "f.txt.sig").write_bytes(b"\x00" * (ef.MAX_SIGNATURE_BYTES + 1))

    with pytest.raises(ef.FileTooLargeError):
        _read(exchange, parties)


# -- the whole exchange, both formats ------------------------------------------


def test_bank_result_file_reaches_the_gateway_verified(
    exchange: Path, parties: Parties
) -> None:
    golden = load_gen_golden().build_golden()
    ef.write_signed(
        exchange,
        "results-1.txt",
        golden["results.txt"],
        signer=parties.bank,
        payload_type=ef.FIXED_WIDTH_RESULTS,
    )
    ef.write_signed(
        exchange,
        "status-1.xml",
        golden["pain002.xml"],
        signer=parties.bank,
        payload_type=ef.PAIN002,
    )

    verified = list(
        ef.iter_verified(
            exchange,
            payload_type=ef.FIXED_WIDTH_RESULTS,
            trust=parties.trust,
            expected_signer=BANK,
            suffix=".txt",
        )
    )

    assert [v.name for v in verified] == ["results-1.txt"]
    header, results = fw.load_results(io.BytesIO(verified[0].data))
    assert header.bank_code == "CQRCB"
    assert [r.status for r in results] == [
        exchange_pb2.RESULT_STATUS_PAID,
        exchange_pb2.RESULT_STATUS_FAILED,
        exchange_pb2.RESULT_STATUS_RETURNED,
    ]


# -- golden files --------------------------------------------------------------------


def test_golden_files_have_not_drifted() -> None:
    built = load_gen_golden().build_golden()

    assert sorted(built) == sorted(p.name for p in GOLDEN.iterdir())
    for name, data in built.items():
        assert (GOLDEN / name).read_bytes() == data, f"tests/golden/{name} drifted"


def test_golden_files_read_back_to_the_same_outcomes() -> None:
    module = load_gen_golden()
    instruction_set = module.golden_instruction_set()
    expected = [
        (iid, status, reason) for iid, status, reason in module.golden_outcomes()
    ]
    ids = [i.instruction_id for i in instruction_set.instructions]

    _, fixed = fw.load_results(io.BytesIO((GOLDEN / "results.txt").read_bytes()))
    report = iso.read_pain002(
        io.BytesIO((GOLDEN / "pain002.xml").read_bytes()),
        end_to_end_ids=iso.end_to_end_index(ids),
    )
    instructions = fw.load_instruction_set(
        io.BytesIO((GOLDEN / "instructions.txt").read_bytes())
    )
    transfers = iso.read_pain001(io.BytesIO((GOLDEN / "pain001.xml").read_bytes()))

    assert [(r.instruction_id, r.status, r.reason_code) for r in fixed] == expected
    assert [(r.instruction_id, r.status, r.reason_code) for r in report.results] == (
        expected
    )
    assert list(instructions.instructions) == list(instruction_set.instructions)
    assert [t.amount_fen for t in transfers.transfers] == [
        i.amount_fen for i in instruction_set.instructions
    ]
