"""Search a folder for personal data in clear, in any encoding we can think of.

``ykt pii-scan --samples DIR OUT`` reads every name, ID number and
account number of a sample set (its department files, registry and
ledgers) and looks for each, as bytes, in every file under ``OUT``:

  * UTF-8, GBK, UTF-16 (little and big endian), for all three kinds;
  * for ID numbers and account numbers that are all digits, also as 64-bit
    integers (little and big endian) at every byte offset, in case something
    stored them as numbers.

Short values make false alarms in megabytes of ciphertext: a 2-character
name is 4 bytes of GBK, which random bytes match by chance. So names are
searched only in encodings that give them at least 6 bytes (a 2-character
name in UTF-8; a 3-character name in GBK or UTF-16).
"""

from __future__ import annotations

import array
import csv
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.files import read_department_file

# Files under the scanned folder that hold the plaintext on purpose: the
# generated input data itself, when the demo made its own.
SKIP_FOLDERS = frozenset({"samples"})


@dataclass
class Values:
    names: set[str] = field(default_factory=set)
    id_numbers: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Hit:
    path: Path
    kind: str
    encoding: str


def sample_values(samples: Path) -> Values:
    """Every name, ID number and account number a sample set contains."""
    values = Values()
    for path in sorted((samples / "batches").glob("*")):
        if path.suffix.lower() not in (".csv", ".xlsx") or path.name == "manifest.csv":
            continue
        for source in read_department_file(path).iter_rows():
            _add(values, source.name, source.id_number, source.account_number)
            _add(values, source.proxy_name, source.proxy_id_number, "")
    for path in [
        samples / "registry" / "accounts.csv",
        *(samples / "banks").glob("*.csv"),
    ]:
        for row in _csv(path):
            _add(
                values,
                row.get("name") or row.get("holder_name", ""),
                row.get("id_number") or row.get("holder_id_number", ""),
                row.get("account", ""),
            )
            _add(values, row.get("proxy_name", ""), row.get("proxy_id_number", ""), "")
    return values


def _add(values: Values, name: str, id_number: str, account: str) -> None:
    if name.strip():
        values.names.add(name.strip())
    if len(id_number.strip()) >= 15:
        values.id_numbers.add(id_number.strip().upper())
    if len(account.strip()) >= 10:
        values.accounts.add(account.strip())


def _csv(path: Path) -> Iterator[dict[str, str]]:
    if path.exists():
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield from csv.DictReader(handle)


# Runs of characters each kind of value is made of, per encoding. A value is
# found when it is a substring of such a run; the regular expressions do the
# byte-level work in C.
_DIGIT_RUNS = {
    "ascii": (re.compile(rb"[0-9]{9,}[Xx]?"), "ascii"),
    "utf-16-le": (re.compile(rb"(?:[0-9Xx]\x00){9,}"), "utf-16-le"),
    "utf-16-be": (re.compile(rb"(?:\x00[0-9Xx]){9,}"), "utf-16-be"),
}
_NAME_RUNS = {
    "utf-8": (re.compile(rb"(?:[\xe3-\xe9][\x80-\xbf]{2}|\xc2\xb7){2,}"), 2),
    "gbk": (re.compile(rb"(?:[\x81-\xfe][\x40-\x7e\x80-\xfe]){3,}"), 3),
    "utf-16-le": (re.compile(rb"(?:[\x00-\xff][\x4e-\x9f]){3,}"), 3),
    "utf-16-be": (re.compile(rb"(?:[\x4e-\x9f][\x00-\xff]){3,}"), 3),
}


def scan(folder: Path, values: Values) -> list[Hit]:
    """Every file under ``folder`` that contains one of the values."""
    numbers = values.id_numbers | values.accounts
    integers = {int(v) for v in numbers if v.isdigit() and int(v) < 2**64}
    hits = []
    for path in files(folder):
        data = path.read_bytes()
        hit = (
            _digits(data, values)
            or _names(data, values.names)
            or _integers(data, integers)
        )
        if hit is not None:
            hits.append(Hit(path, *hit))
    return hits


def _digits(data: bytes, values: Values) -> tuple[str, str] | None:
    lengths = {len(v) for v in values.id_numbers | values.accounts}
    for encoding, (pattern, codec) in _DIGIT_RUNS.items():
        for match in pattern.finditer(data):
            run = match.group().decode(codec).upper()
            for found in _substrings(run, lengths):
                if found in values.id_numbers:
                    return "id_number", encoding
                if found in values.accounts:
                    return "account", encoding
    return None


def _names(data: bytes, names: set[str]) -> tuple[str, str] | None:
    for encoding, (pattern, shortest) in _NAME_RUNS.items():
        lengths = {len(n) for n in names if len(n) >= shortest}
        for match in pattern.finditer(data):
            run = match.group().decode(encoding, errors="replace")
            for found in _substrings(run, lengths):
                if found in names:
                    return "name", encoding
    return None


def _integers(data: bytes, integers: set[int]) -> tuple[str, str] | None:
    """ID and account numbers stored as 64-bit integers, at any offset."""
    for code, encoding in (("<", "uint64-le"), (">", "uint64-be")):
        for offset in range(8):
            usable = (len(data) - offset) // 8 * 8
            if usable <= 0:
                continue
            column = array.array("Q", data[offset : offset + usable])
            if (code == ">") == (sys.byteorder == "little"):
                column.byteswap()
            if integers.intersection(column):
                return "number", encoding
    return None


def _substrings(run: str, lengths: set[int]) -> Iterator[str]:
    for length in lengths:
        for start in range(0, len(run) - length + 1):
            yield run[start : start + length]


def files(folder: Path) -> Iterable[Path]:
    """The files ``scan`` searches: all, except input data kept on purpose."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not SKIP_FOLDERS & set(relative.parts[:-1]):
            yield path
