"""Sealing personal data at rest with a per-batch data key.

Invariants:
- Every sealed blob is AES-256-GCM with a fresh random 96-bit nonce, stored as
  nonce || ciphertext || tag.
- The associated data names what the blob is (for example the batch id and
  chunk index), so a blob moved to another row fails to open.
- A data key exists in clear only in memory; the store holds it wrapped (see
  ``keys.keystore``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


@dataclass(frozen=True)
class DataKey:
    key: bytes

    @classmethod
    def generate(cls) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=256))

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return AESGCM(self.key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)

    def __repr__(self) -> str:
        return "DataKey(<secret>)"


@dataclass(frozen=True)
class Tokenizer:
    """Keyed HMAC-SHA256 digests for matching without plaintext."""

    key: bytes

    def person(self, normalised_id_number: str) -> bytes:
        return hmac.digest(
            self.key, b"person:" + normalised_id_number.encode(), "sha256"
        )

    def account(self, digits: str) -> bytes:
        return hmac.digest(self.key, b"account:" + digits.encode(), "sha256")

    def holder(self, normalised_id_number: str, normalised_name: str) -> bytes:
        """An account holder as a bank checks one: ID number and name together."""
        data = f"holder:{len(normalised_id_number)}:{normalised_id_number}:"
        return hmac.digest(self.key, (data + normalised_name).encode(), "sha256")

    def __repr__(self) -> str:
        return "Tokenizer(<secret>)"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
