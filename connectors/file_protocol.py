"""How the gateway and a file-connected agent bank share a folder.

Each bank has one exchange folder with two one-way folders in it::

    <root>/<BANK>/to-bank/     the gateway writes, the bank reads
    <root>/<BANK>/from-bank/   the bank writes, the gateway reads
    <root>/<BANK>/refused/     inbound files the gateway could not accept,
                               each with a ``.why`` note (no personal data)
    <root>/<BANK>/kept/        with ``--keep-exchange-files`` only: files
                               done with, kept for inspection

Every file is written atomically and is complete only once its detached
signature ``<name>.sig`` exists (``connectors.exchange_files``). The names:

==========================  =========  =========================================
file                        written by what it holds
==========================  =========  =========================================
``<set>.checks``            gateway    an AccountCheckSet, as its signed envelope
``<set>.answers``           bank       the AccountCheckResultSet, signed envelope
``<set>.ins``               gateway    fixed-width instruction file (GBK)
``<set>.pain001.xml``       gateway    pain.001.001.09 for the set
``<file>.ack``              bank       acknowledgement of ``<file>`` (below)
``<anything>.res``          bank       fixed-width result file (GBK)
``<anything>.pain002.xml``  bank       pain.002.001.10 status report
==========================  =========  =========================================

Account checks travel as the gateway's own signed envelopes because neither
native format has a record for them; instructions and results travel in the
bank's format. An acknowledgement is two lines of ASCII, ``<file name>`` and
the hex SHA-256 of the file's bytes, signed like every other file: the bank
says it stored exactly those bytes durably. The gateway then marks the set
acknowledged and deletes the file. The gateway deletes each inbound file
once it has stored it as evidence. Told to keep exchange files, it moves
them to ``kept/`` instead, out of the bank's sight.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from connectors import exchange_files

TO_BANK = "to-bank"
FROM_BANK = "from-bank"
REFUSED = "refused"
KEPT = "kept"

CHECKS = ".checks"
ANSWERS = ".answers"
ACK = ".ack"

_ACK = re.compile(rb"\A([A-Za-z0-9][A-Za-z0-9._-]{0,199})\n([0-9a-f]{64})\n\Z")


class Style(enum.StrEnum):
    """A connector style that exchanges files."""

    FIXED_WIDTH = "fixed-width-file"
    ISO20022 = "iso20022-file"

    @property
    def instruction_suffix(self) -> str:
        return ".ins" if self is Style.FIXED_WIDTH else ".pain001.xml"

    @property
    def result_suffix(self) -> str:
        return ".res" if self is Style.FIXED_WIDTH else ".pain002.xml"

    @property
    def instruction_type(self) -> str:
        if self is Style.FIXED_WIDTH:
            return exchange_files.FIXED_WIDTH_INSTRUCTIONS
        return exchange_files.PAIN001

    @property
    def result_type(self) -> str:
        if self is Style.FIXED_WIDTH:
            return exchange_files.FIXED_WIDTH_RESULTS
        return exchange_files.PAIN002


@dataclass(frozen=True)
class BankFolders:
    """One bank's exchange folders under ``root``."""

    root: Path
    bank_code: str

    @property
    def to_bank(self) -> Path:
        return self.root / self.bank_code / TO_BANK

    @property
    def from_bank(self) -> Path:
        return self.root / self.bank_code / FROM_BANK

    @property
    def refused(self) -> Path:
        return self.root / self.bank_code / REFUSED

    @property
    def kept(self) -> Path:
        return self.root / self.bank_code / KEPT

    def create(self) -> BankFolders:
        for folder in (self.to_bank, self.from_bank, self.refused, self.kept):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def set_id_of(name: str, suffix: str) -> str:
    """The set id a file of the gateway's is named after."""
    if not name.endswith(suffix):
        raise ValueError("the file name does not end with the expected suffix")
    return name[: -len(suffix)]


def encode_ack(name: str, data: bytes) -> bytes:
    """The acknowledgement of file ``name`` whose bytes are ``data``."""
    exchange_files.check_name(name)
    return f"{name}\n{hashlib.sha256(data).hexdigest()}\n".encode("ascii")


def decode_ack(data: bytes) -> tuple[str, str]:
    """(file name, hex SHA-256) from an acknowledgement; strict."""
    match = _ACK.match(data)
    if match is None:
        raise ValueError("the acknowledgement is malformed")
    return match.group(1).decode("ascii"), match.group(2).decode("ascii")
