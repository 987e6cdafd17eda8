"""Start, kill and restart ``ykt`` processes for the crash tests.

Every process is started here as a child of the test and is ended only by
its own process handle, never by name. ``Processes`` ends whatever is still
running when a test finishes, passing or failing.

DANGEROUS: ``ChildProcess.kill_now`` sends SIGKILL, which gives the child no
chance to clean up. That is the point: it is how a power cut or the OOM
killer ends a bank runner or a gateway.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent

# Generous bounds: a slow shared machine must not fail these tests.
START_SECONDS = 60.0
STOP_SECONDS = 15.0


def ykt(*args: str) -> list[str]:
    """The command line that runs ``ykt`` with this interpreter."""
    return [sys.executable, "-m", "gateway.cli", *args]


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1.

    TODO: another process may take the port between this call and the
    child's bind; the gateway then fails to start and the test says so. The
    gateway must come back on the same port after a kill (the bank runner
    was told one address), so port 0 cannot be used here.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class ChildProcess:
    """One started ``ykt`` process; its output goes to ``log``."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            self._popen = subprocess.Popen(
                command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return self._popen.poll()

    def kill_now(self) -> None:
        """DANGEROUS: SIGKILL this one process, and reap it."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end within the bound."""
        if self._popen.poll() is not None:
            return
        self._popen.terminate()
        try:
            self._popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill_now()


class Processes:
    """The children one test started; all are ended when it finishes."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._started: list[ChildProcess] = []

    def start(self, name: str, command: list[str]) -> ChildProcess:
        child = ChildProcess(name, command, self.logs / f"{name}.log")
        self._started.append(child)
        return child

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for child in reversed(self._started):
            child.stop()

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_gateway(
    processes: Processes,
    state: Path,
    port: int,
    *,
    database_url: str | None = None,
) -> ChildProcess:
    """``ykt serve --dev`` on ``state`` and ``port``; return once it serves."""
    ready = state / "gateway.port"
    ready.unlink(missing_ok=True)
    command = [
        "serve",
        "--dev",
        "--state",
        str(state),
        "--listen",
        f"127.0.0.1:{port}",
        "--ready-file",
        str(ready),
    ]
    if database_url:
        command += ["--database-url", database_url]
    child = processes.start("gateway", ykt(*command))
    deadline = time.monotonic() + START_SECONDS
    while not (ready.exists() and ready.read_text().strip()):
        if child.exited() is not None:
            raise AssertionError(
                f"the gateway exited at start (code {child.exited()}); see {child.log}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway did not start in time; see {child.log}")
        time.sleep(0.05)
    return child


def start_bank(
    processes: Processes,
    *,
    bank: str,
    gateway: str,
    ledgers: Path,
    credentials: Path,
    crl: Path,
    state: Path,
    faults: str = "",
    seed: int | None = None,
) -> ChildProcess:
    """``ykt bank simulate`` in the grpc-pull style."""
    command = [
        "bank",
        "simulate",
        "--bank",
        bank,
        "--connector",
        "grpc-pull",
        "--gateway",
        gateway,
        "--ledgers",
        str(ledgers),
        "--credentials",
        str(credentials),
        "--crl",
        str(crl),
        "--state",
        str(state),
        "--return-delay",
        "0",
    ]
    if faults:
        command += ["--faults", faults]
    if seed is not None:
        command += ["--fault-seed", str(seed)]
    return processes.start(f"bank-{bank}", ykt(*command))


# -- several gateways on one state folder (the scale-out test) ----------------


def wait_until_serving(child: ChildProcess, ready: Path) -> None:
    """Return once ``child`` wrote its port to ``ready``; fail if it exits
    first or does not serve within ``START_SECONDS``."""
    deadline = time.monotonic() + START_SECONDS
    while not (ready.exists() and ready.read_text().strip()):
        if child.exited() is not None:
            raise AssertionError(
                f"{child.name} exited at start (code {child.exited()}); see {child.log}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{child.name} did not start in time; see {child.log}")
        time.sleep(0.05)


def start_named_gateway(
    processes: Processes,
    name: str,
    state: Path,
    port: int,
    *,
    database_url: str,
) -> ChildProcess:
    """``ykt serve --dev`` as ``name``: its own ready file (``state/<name>.port``)
    and log (``<name>.log``), so several gateways can share one state folder
    and one database. Return once it serves.

    Start them one after the other: a first start on an empty state folder
    creates the development CA and the gateway's credentials there.
    """
    ready = state / f"{name}.port"
    ready.unlink(missing_ok=True)
    command = [
        "serve",
        "--dev",
        "--state",
        str(state),
        "--listen",
        f"127.0.0.1:{port}",
        "--ready-file",
        str(ready),
        "--database-url",
        database_url,
    ]
    child = processes.start(name, ykt(*command))
    wait_until_serving(child, ready)
    return child


def start_named_puller(
    processes: Processes,
    name: str,
    *,
    bank: str,
    gateway: str,
    ledgers: Path,
    credentials: Path,
    crl: Path,
    state: Path,
) -> ChildProcess:
    """``ykt bank simulate`` in the grpc-pull style as ``name``, logging to
    ``<name>.log``; several pullers of one bank may share ``state`` (and so
    one simulated core database)."""
    command = [
        "bank",
        "simulate",
        "--bank",
        bank,
        "--connector",
        "grpc-pull",
        "--gateway",
        gateway,
        "--ledgers",
        str(ledgers),
        "--credentials",
        str(credentials),
        "--crl",
        str(crl),
        "--state",
        str(state),
        "--return-delay",
        "0",
    ]
    return processes.start(name, ykt(*command))
