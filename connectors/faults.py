"""Faults the bank simulator can inject, to show the exchange survives them.

``--faults "drop=0.1,slow=0.2,duplicate-results=0.5,crash-before-ack=0.05"``
gives each fault a probability per opportunity; ``--fault-seed`` makes a run
repeatable. The faults:

  * ``drop``: a call or file write fails as a dropped connection would; the
    runner's bounded retries (tenacity) take over.
  * ``slow``: an answer is delayed by ``slow_seconds``.
  * ``duplicate-results``: a result set or result file is sent twice.
  * ``crash-before-ack``: the process dies after paying and before
    acknowledging, the worst moment for a bank to die.
  * ``truncate``: the process dies half-way through writing a result file,
    leaving a partial temporary file behind.

DANGEROUS: the two crash faults end the process at once with ``os._exit``,
skipping every cleanup, because that is what a power cut does. They exist
for tests and demonstrations and are off unless asked for.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import grpc

_logger = logging.getLogger(__name__)


class Fault(enum.StrEnum):
    DROP = "drop"
    SLOW = "slow"
    DUPLICATE_RESULTS = "duplicate-results"
    CRASH_BEFORE_ACK = "crash-before-ack"
    TRUNCATE = "truncate"


class DroppedCall(grpc.RpcError):
    """A call that failed as a dropped connection fails: UNAVAILABLE."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection dropped (injected fault)"


def dangerously_crash_process_now() -> NoReturn:
    """End the process at once, as a power cut would: no cleanup at all."""
    _logger.warning("injected fault: crashing now")
    logging.shutdown()
    os._exit(137)


@dataclass
class Faults:
    rates: dict[Fault, float] = field(default_factory=dict)
    seed: int | None = None
    slow_seconds: float = 2.0
    crash: Callable[[], NoReturn] = dangerously_crash_process_now

    def __post_init__(self) -> None:
        # Not for secrets: a seeded generator makes a faulty run repeatable.
        self._rng = random.Random(self.seed)  # noqa: S311

    @classmethod
    def parse(cls, text: str, seed: int | None = None) -> Faults:
        """``"drop=0.1,slow=0.2"`` -> Faults; an unknown fault is an error."""
        rates: dict[Fault, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, rate = item.partition("=")
            try:
                fault = Fault(name.strip())
                probability = float(rate) if rate else 1.0
            except ValueError as exc:
                raise ValueError(f"unknown fault or rate: {item}") from exc
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"a fault's rate lies in [0, 1]: {item}")
            rates[fault] = probability
        return cls(rates, seed)

    def hits(self, fault: Fault) -> bool:
        rate = self.rates.get(fault, 0.0)
        hit = rate > 0 and self._rng.random() < rate
        if hit:
            _logger.info("injected fault", extra={"fault": fault.value})
        return hit

    def drop_call(self) -> None:
        if self.hits(Fault.DROP):
            raise DroppedCall()

    def drop_write(self) -> None:
        if self.hits(Fault.DROP):
            raise ConnectionResetError("write dropped (injected fault)")

    def slow_down(self) -> None:
        if self.hits(Fault.SLOW):
            time.sleep(self.slow_seconds)

    def crash_if(self, fault: Fault) -> None:
        if self.hits(fault):
            self.crash()


NO_FAULTS = Faults()
