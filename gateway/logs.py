"""Logging: fixed event messages, identifiers as fields, one line per event.

Log events, not data: callers pass identifiers (batch id, record id, bank
code, certificate serial) in ``extra``; never a name, ID number or account
number.

Invariants:
  * Every line ``FieldFormatter`` writes is scanned, as the finished text
    (message, arguments, ``extra`` fields and traceback together), before it
    leaves the process. A line that contains an 18-character run whose GB 11643
    check character is right, or a run of 16 to 19 digits that passes Luhn, is
    NOT written: the line becomes ``[refused: log record carried personal
    data]`` with the logger name and the source line, and the counter behind
    ``refused_records()`` goes up by one. ``RefusedRecordsCollector`` serves
    that count as ``ykt_log_records_refused_total`` in whichever Prometheus
    registry registers it.
  * Values wrapped in ``gateway.masking`` types render masked, so they pass
    the guard; the guard is for plaintext that escaped the wrappers.

Threats and limits:
  * The guard is a net, not the first line of defence. The first line is not
    logging personal data at all: fixed messages, identifiers in ``extra``,
    personal values only inside the masking types.
  * Names cannot be recognised and pass the guard. Nor can passbook numbers
    (no check digit), card numbers written in groups (``6214 5900 ...``), or
    numbers run into other digits. TODO: recognise grouped card numbers once a
    connector is seen logging them; until then a code review must catch them.
  * About one random 18-digit run in 11, and one random 16-19 digit run in 10,
    is refused although it is not personal data: a nanosecond timestamp, or a
    long digit run inside a hexadecimal certificate serial. Such a line is
    lost but for its source location; log such values with separators.
  * Cost: one regular-expression pass over each finished line, plus a check
    digit computation per run of 16 or more digits: a few microseconds for a
    typical 150-character line, about a fifth of what formatting the line
    costs, paid by every record the handler formats.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway.normalize import id_check_char, luhn_ok

REFUSAL = "[refused: log record carried personal data]"

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

# A whole run of 16 or more digits, with an ID number's check character X.
# Scanning left to right, a match always starts at the first digit of a run.
_LONG_RUN = re.compile(r"[0-9]{16,}[Xx]?")
_FULLWIDTH_DIGITS = str.maketrans(
    {0xFF10 + i: str(i) for i in range(10)} | {0xFF38: "X", 0xFF58: "x"}
)

ID_LENGTH = 18
CARD_MIN, CARD_MAX = 16, 19

_refused_lock = threading.Lock()
_refused = 0


def carries_personal_data(text: str) -> bool:
    """Whether text contains what looks like an ID number or a card number
    (see the module docstring for exactly what is recognised)."""
    if not text.isascii():
        text = text.translate(_FULLWIDTH_DIGITS)

    return any(_is_id_or_card(match.group()) for match in _LONG_RUN.finditer(text))


def _is_id_or_card(run: str) -> bool:
    digits = run.rstrip("Xx")
    if len(digits) == ID_LENGTH and id_check_char(digits[:-1]) == digits[-1]:
        return True
    if len(digits) == ID_LENGTH - 1 < len(run) and id_check_char(digits) == "X":
        return True
    return CARD_MIN <= len(digits) <= CARD_MAX and luhn_ok(digits)


def refused_records() -> int:
    """How many log records this process refused to write so far."""
    with _refused_lock:
        return _refused


def _count_refusal() -> None:
    global _refused
    with _refused_lock:
        _refused += 1


class RefusedRecordsCollector(Collector):
    """``ykt_log_records_refused_total``: the process's ``refused_records()``,
    read at scrape time. Register it in the registry the metrics endpoint
    serves; the count is per process, as logging is."""

    def collect(self) -> list[CounterMetricFamily]:
        return [
            CounterMetricFamily(
                "ykt_log_records_refused",
                "Log records not written because they carried an ID or card number.",
                value=refused_records(),
            )
        ]


class FieldFormatter(logging.Formatter):
    """One line per record: time, level, logger, message, then the ``extra``
    fields as JSON. Refuses a line that carries personal data."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        when = self.formatTime(record)
        head = f"{when} {record.levelname} {record.name}: "

        line = head + record.getMessage()
        if fields:
            line += " " + json.dumps(
                fields, ensure_ascii=False, default=str, sort_keys=True
            )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)

        if carries_personal_data(line):
            _count_refusal()
            if carries_personal_data(head):
                # A logger named after a person: not even the name is written.
                head = f"{when} {record.levelname} [logger name withheld]: "
            source = json.dumps({"source": f"{record.module}:{record.lineno}"})
            return f"{head}{REFUSAL} {source}"
        return line


def configure(level: int = logging.INFO, file: Path | None = None) -> None:
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Migration chatter is not an event an operator needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)
