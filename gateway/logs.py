"""Logging: fixed event messages, identifiers as fields, one line per event.

Log events, not data: callers pass identifiers (batch id, record id, bank
code, certificate serial) in ``extra``; never a name, ID number or account
number.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class FieldFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        when = self.formatTime(record)
        line = f"{when} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line += " " + json.dumps(
                fields, ensure_ascii=False, default=str, sort_keys=True
            )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
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
