"""Signed exchange files in a shared directory: write, list, verify, delete.

Every file the gateway and a file-based agent bank exchange travels with a
detached signature over its exact bytes, in the scheme the gRPC messages use:
``<name>.sig`` holds a serialised ``ykt.v1.SignedEnvelope`` whose

  * ``payload_type`` names the file format (``PAYLOAD_TYPES``), so a result
    file can never pass for an instruction file;
  * ``payload`` is EMPTY: the payload is the file next to it;
  * ``signature`` covers ``pae(payload_type, file bytes)``, the same
    pre-authentication encoding as ``gateway.envelope``. PAE carries the
    byte length, so no SHA-256 of the file is stored: it would be an unsigned
    claim beside a signature that already covers every byte;
  * ``signer_certificate`` is the signer's document-signing certificate.

Invariants:
  * A file is *complete* once its signature exists. Both are written under a
    temporary name (``.<name>.tmp``), flushed, fsynced and renamed into place,
    the data first and the signature second, and the directory is fsynced
    after each rename. A reader therefore never sees a half-written file
    under a listed name, and a file whose signature has not arrived is not
    listed.
  * ``read_verified`` reads the signature and the file once, verifies the
    signer against the trust store (chain, CRL, signing purpose) and the
    signature over exactly the bytes read, checks that the signer is the
    expected party, and only then returns those bytes for parsing.
  * Names are plain file names (letters, digits, ``.``, ``_``, ``-``, not
    starting with a dot): no path can climb out of the exchange directory.
  * A complete file is never overwritten; a new set gets a new name.

Threats not answered here, and where they are answered: a detached signature
has no header, so it binds neither audience nor a validity window. The
file's own header names the bank and the set id; the caller must check them
(the bank code is the audience). Replaying an old complete file is harmless
because set ids are unique at the gateway and the bank pays an instruction
id once.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from gateway.envelope import pae, verify_signed
from gateway.errors import EnvelopeError, UntrustedSignerError
from keys.identity import Identity
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import envelope_pb2

SIGNATURE_SUFFIX = ".sig"
TEMP_SUFFIX = ".tmp"

# Payload types of the signed files: one per file format and version.
FIXED_WIDTH_INSTRUCTIONS = "ykt.file.v1.FixedWidthInstructions"
FIXED_WIDTH_RESULTS = "ykt.file.v1.FixedWidthResults"
PAIN001 = "ykt.file.v1.pain.001.001.09"
PAIN002 = "ykt.file.v1.pain.002.001.10"
# A signed protobuf envelope carried as a file, for the exchanges a bank's
# native format has no record for (account checks and their answers).
ACCOUNT_CHECKS = "ykt.file.v1.AccountCheckSet"
ACCOUNT_CHECK_ANSWERS = "ykt.file.v1.AccountCheckResultSet"
# The bank's acknowledgement that it stored a file durably.
ACKNOWLEDGEMENT = "ykt.file.v1.Acknowledgement"
PAYLOAD_TYPES = frozenset(
    {
        FIXED_WIDTH_INSTRUCTIONS,
        FIXED_WIDTH_RESULTS,
        PAIN001,
        PAIN002,
        ACCOUNT_CHECKS,
        ACCOUNT_CHECK_ANSWERS,
        ACKNOWLEDGEMENT,
    }
)

# Bounds checked before anything is read whole into memory.
# TODO: the signature suites sign and verify whole byte strings, so a file is
# held in memory once to sign or verify it; a prehashed PAE would let files
# larger than this bound stream, but needs a new suite method in keys.signing.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")


class IncompleteFileError(EnvelopeError):
    """The file or its signature is missing: it is not complete (yet)."""


class FileTooLargeError(EnvelopeError):
    """The file or its signature is over the size bound."""


@dataclass(frozen=True)
class VerifiedFile:
    """Bytes that verified, and who signed them."""

    name: str
    payload_type: str
    signer: Identity
    data: bytes
    # The detached signature, kept as evidence of who sent these bytes.
    signature: envelope_pb2.SignedEnvelope


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain exchange-file name, else raise."""
    if not _NAME.match(name) or name.endswith((SIGNATURE_SUFFIX, TEMP_SUFFIX)):
        raise ValueError("not a valid exchange file name")
    return name


def signature_name(name: str) -> str:
    return check_name(name) + SIGNATURE_SUFFIX


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Write ``.<name>.tmp``, fsync it, rename it to ``name``, fsync the folder.

    Never through a link: the temporary file is opened without following one,
    and the rename replaces a link at ``name`` rather than its target.
    """
    temporary = directory / f".{name}{TEMP_SUFFIX}"
    fd = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
        0o640,
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def sign_file_bytes(
    signer: Signer, payload_type: str, data: bytes
) -> envelope_pb2.SignedEnvelope:
    """The detached signature envelope for ``data``: empty payload field."""
    if payload_type not in PAYLOAD_TYPES:
        raise ValueError("unknown exchange file payload type")
    return envelope_pb2.SignedEnvelope(
        payload_type=payload_type,
        payload=b"",
        signature=signer.sign(pae(payload_type, data)),
        signer_certificate=signer.cert_der,
    )


def write_signed(
    directory: Path, name: str, data: bytes, *, signer: Signer, payload_type: str
) -> Path:
    """Write ``name`` and then ``name.sig``, each atomically; return the path.

    Refuses to replace a complete file. A file left without its signature by
    an earlier crash is not complete and is replaced. One writer per
    directory: two writers racing on one name are not detected.
    """
    check_name(name)
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLargeError("the file is over the size bound")
    if (directory / signature_name(name)).exists():
        raise FileExistsError(f"exchange file {name} is already complete")
    envelope = sign_file_bytes(signer, payload_type, data)

    write_atomically(directory, name, data)

    write_atomically(
        directory,
        signature_name(name),
        envelope.SerializeToString(deterministic=True),
    )
    return directory / name


def list_irregular(directory: Path) -> list[str]:
    """Entries that are neither regular files nor temporary ones: links,
    folders, devices. Nobody should put them there; they are refused, not
    skipped."""
    return sorted(
        entry.name
        for entry in os.scandir(directory)
        if not entry.is_file(follow_symlinks=False) or entry.is_symlink()
    )


def list_complete(directory: Path) -> list[str]:
    """Names of complete files, sorted: plain names whose signature exists."""
    names = set()
    signed = set()
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
            continue
        if entry.name.endswith(SIGNATURE_SUFFIX):
            signed.add(entry.name[: -len(SIGNATURE_SUFFIX)])
        elif _NAME.match(entry.name) and not entry.name.endswith(TEMP_SUFFIX):
            names.add(entry.name)
    return sorted(names & signed)


def read_bounded(path: Path, limit: int) -> bytes:
    """A regular file's bytes, never through a link, at most ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise IncompleteFileError(f"{path.name} is missing") from None
    except OSError as exc:  # ELOOP: a link where a file should be
        raise EnvelopeError(f"{path.name} is not a regular file") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EnvelopeError(f"{path.name} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"{path.name} is over the size bound")
    return data


def verify_file_bytes(
    envelope: envelope_pb2.SignedEnvelope,
    data: bytes,
    *,
    payload_type: str,
    trust: TrustStore,
) -> Identity:
    """Verify a detached signature over ``data``; return the signer.

    The same checks as ``gateway.envelope.open_envelope`` steps 1 to 3
    (``verify_signed``), and an empty payload field.
    """
    if envelope.payload_type == payload_type and envelope.payload:
        raise EnvelopeError("a detached signature must have an empty payload")
    identity, _ = verify_signed(envelope, payload_type, data, trust=trust, what="file")
    return identity


def read_verified(
    directory: Path,
    name: str,
    *,
    payload_type: str,
    trust: TrustStore,
    expected_signer: Identity,
) -> VerifiedFile:
    """Read ``name`` and its signature; return the bytes only if they verify.

    Raises ``IncompleteFileError`` when either part is missing,
    ``EnvelopeError`` when the signature does not cover these bytes or the
    type is wrong, and ``UntrustedSignerError`` when the signer is not
    trusted or is not ``expected_signer``.
    """
    check_name(name)
    raw_signature = read_bounded(directory / signature_name(name), MAX_SIGNATURE_BYTES)
    try:
        envelope = envelope_pb2.SignedEnvelope.FromString(raw_signature)
    except (DecodeError, RecursionError) as exc:
        raise EnvelopeError("the signature file does not parse") from exc

    data = read_bounded(directory / name, MAX_FILE_BYTES)

    signer = verify_file_bytes(envelope, data, payload_type=payload_type, trust=trust)
    if signer != expected_signer:
        raise UntrustedSignerError("the file is not signed by the expected party")
    return VerifiedFile(name, payload_type, signer, data, envelope)


def iter_verified(
    directory: Path,
    *,
    payload_type: str,
    trust: TrustStore,
    expected_signer: Identity,
    suffix: str = "",
) -> Iterator[VerifiedFile]:
    """Every complete file in ``directory`` whose name ends with ``suffix``,
    verified, in name order. A file of another payload type among them is an
    error, not a skip: keep one directory (or one suffix) per format."""
    for name in list_complete(directory):
        if not name.endswith(suffix):
            continue
        yield read_verified(
            directory,
            name,
            payload_type=payload_type,
            trust=trust,
            expected_signer=expected_signer,
        )


def delete_acknowledged(directory: Path, name: str) -> None:
    """Remove an acknowledged file: signature first, so it stops being
    complete before its data goes. Missing parts are fine (idempotent)."""
    (directory / signature_name(name)).unlink(missing_ok=True)
    (directory / name).unlink(missing_ok=True)
    _fsync_directory(directory)
