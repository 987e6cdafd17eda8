"""Key-encryption keys and the token key, behind one pluggable protocol.

Invariants and threats:
- Batch content is encrypted with a per-batch data key (AES-256-GCM). The data
  key is stored only wrapped by a key-encryption key (KEK) of an *epoch*.
  Destroying an epoch's KEK makes every batch wrapped under it unreadable,
  even from a database copy taken earlier (crypto-shredding).
- Two kinds of epoch: ``open-YYYY-MM`` wraps the batches submitted in that
  month while they are open; ``until-YYYY-MM`` wraps closed batches whose
  retention ends in that month (``gateway.retention`` moves each batch from
  the first kind to the second when it closes, and destroys both kinds when
  their time has come).
- Matching never needs plaintext: the token key turns ID numbers and account
  numbers into keyed HMAC-SHA256 digests. Without the token key a digest
  cannot be tested against guessed ID numbers.
- ``LocalKeyStore`` keeps keys as files (mode 0600) for development. A
  production key store (HSM, KMS) implements the same ``KeyStore`` protocol.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_EPOCH_PATTERN = re.compile(r"^(open|until)-[0-9]{4}-[0-9]{2}$")


class KeyShreddedError(Exception):
    """The key-encryption key of this epoch was destroyed."""


class KeyStore(Protocol):
    def wrap(self, data_key: bytes, *, epoch: str, context: bytes) -> tuple[str, bytes]:
        """Wrap a data key under the epoch's KEK; return (kek id, wrapped key)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes: ...

    def token_key(self) -> bytes: ...

    def epochs(self) -> list[str]:
        """The epochs whose KEK still exists."""
        ...

    def shred(self, epoch: str) -> None:
        """DANGEROUS: destroy the epoch's KEK, and with it every batch under it."""
        ...


class LocalKeyStore:
    """DEVELOPMENT key store: KEKs and the token key as files in a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _kek_path(self, kek_id: str) -> Path:
        epoch = kek_id.removeprefix("kek-")
        if not _EPOCH_PATTERN.match(epoch):
            raise ValueError("malformed key-encryption key id")
        return self.directory / f"{kek_id}.key"

    def _kek(self, kek_id: str, *, create: bool) -> bytes:
        path = self._kek_path(kek_id)
        if not path.exists():
            if not create:
                raise KeyShreddedError(f"{kek_id} is not available")
            _create_once(path, AESGCM.generate_key(bit_length=256))
        return path.read_bytes()

    def wrap(self, data_key: bytes, *, epoch: str, context: bytes) -> tuple[str, bytes]:
        kek_id = f"kek-{epoch}"
        nonce = secrets.token_bytes(12)
        wrapped = AESGCM(self._kek(kek_id, create=True)).encrypt(
            nonce, data_key, context
        )
        return kek_id, nonce + wrapped

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        aead = AESGCM(self._kek(kek_id, create=False))
        return aead.decrypt(wrapped[:12], wrapped[12:], context)

    def token_key(self) -> bytes:
        path = self.directory / "token.key"
        if not path.exists():
            _create_once(path, secrets.token_bytes(32))
        return path.read_bytes()

    def epochs(self) -> list[str]:
        found = (p.stem.removeprefix("kek-") for p in self.directory.glob("kek-*.key"))
        return sorted(epoch for epoch in found if _EPOCH_PATTERN.match(epoch))

    def shred(self, epoch: str) -> None:
        path = self._kek_path(f"kek-{epoch}")
        if path.exists():
            # Overwrite before unlinking; on copy-on-write or journaling file
            # systems only the key's absence from every backup truly shreds.
            size = path.stat().st_size
            with path.open("r+b") as handle:
                handle.write(os.urandom(size))
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()


def _create_once(path: Path, key: bytes) -> None:
    """Create a key file unless it exists; never replace one.

    Two gateways sharing a key folder may both find a key missing; the
    first to create it wins and the other reads the winner's key. Replacing
    a key would make everything wrapped under the first one unreadable. The
    key is written whole under a private name first and then linked into
    place, which fails if the name exists: no reader ever sees half a key.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        # Another gateway created it first: its key stands, ours goes.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
