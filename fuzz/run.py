"""Run one fuzz target for a while: ``python fuzz/run.py TARGET --seconds 60``.

The first run creates ``.venv-fuzz/`` at the repository root with atheris
(pinned, binary wheel only: building atheris needs clang and libFuzzer) and
the project installed editable; later runs reuse it. The project's own
``.venv`` is never touched, so the test suite does not depend on atheris.

libFuzzer's working corpus (every new interesting input) goes to
``fuzz/work/<target>/corpus/``, which git ignores. It starts from the
checked-in ``seed-*`` files of ``fuzz/corpus/<target>/``, copied; the
``crash-*`` files there are left out unless ``--with-crashes`` is given,
because a finding that is not fixed yet would stop the run at its first
input. A crashing input is copied into ``fuzz/corpus/<target>/crash-<sha1>``,
where ``tests/test_fuzz_corpus.py`` replays it. Timeouts and out-of-memory
inputs stay in ``fuzz/work/<target>/artifacts/`` for a person to judge.

Exit status: 0 when the run found nothing, 1 when it found a crash, 2 when
the environment cannot be set up (no atheris wheel for this Python).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ATHERIS = "atheris==3.0.0"

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-fuzz"
STAMP = VENV / ".ykt-fuzz-installed"
CORPUS = ROOT / "fuzz" / "corpus"
WORK = ROOT / "fuzz" / "work"
TARGETS = (
    "department_file",
    "fixed_width_instructions",
    "fixed_width_results",
    "pain002",
    "pain001",
    "envelope",
    "ack",
)
# Seconds one input may take before libFuzzer calls it a hang.
INPUT_TIMEOUT = 20
RSS_LIMIT_MB = 2048


def venv_python() -> Path:
    return VENV / "bin" / "python"


def wanted_stamp() -> str:
    """What the venv must have been set up with; a change reinstalls."""
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{ATHERIS} {sys.version_info[:2]} {pyproject}\n"


def set_up() -> None:
    """Create .venv-fuzz with atheris and the project, unless it is current."""
    if STAMP.exists() and STAMP.read_text() == wanted_stamp():
        return

    if not VENV.exists():
        print(f"creating {VENV.relative_to(ROOT)}", flush=True)
        venv.create(VENV, with_pip=True)
        # Keep the venv out of git and out of `ruff check .` even before
        # the repository's .gitignore lists it.
        (VENV / ".gitignore").write_text("*\n")
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet"]

    installed = subprocess.run([*pip, "--only-binary", "atheris", ATHERIS], check=False)
    if installed.returncode != 0:
        print(
            f"cannot install {ATHERIS}: no binary wheel for this Python "
            f"({sys.version.split()[0]}) and platform, or no access to the "
            "package index. Fuzzing needs atheris; nothing was run.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    subprocess.run([*pip, "-e", str(ROOT)], check=True)

    STAMP.write_text(wanted_stamp())


def starting_inputs(target: str, *, with_crashes: bool) -> Path:
    """A fresh folder with the checked-in inputs libFuzzer starts from."""
    folder = WORK / target / "start"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    patterns = ("seed-*", "crash-*") if with_crashes else ("seed-*",)
    for pattern in patterns:
        for path in (CORPUS / target).glob(pattern):
            shutil.copyfile(path, folder / path.name)
    return folder


def run(target: str, seconds: int, extra: list[str], *, with_crashes: bool) -> int:
    """Fuzz ``target`` for ``seconds``; return 1 if it crashed, else 0."""
    seeds = CORPUS / target
    work = WORK / target / "corpus"
    artifacts = WORK / target / "artifacts"
    for folder in (seeds, work, artifacts):
        folder.mkdir(parents=True, exist_ok=True)
    start = starting_inputs(target, with_crashes=with_crashes)
    before = set(artifacts.iterdir())

    command = [
        str(venv_python()),
        "-m",
        f"fuzz.targets.{target}",
        f"-max_total_time={seconds}",
        f"-timeout={INPUT_TIMEOUT}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={artifacts}{os.sep}",
        *extra,
        str(work),
        str(start),
    ]
    print(" ".join(command), flush=True)
    fuzzed = subprocess.run(command, cwd=ROOT, check=False)

    found = sorted(set(artifacts.iterdir()) - before)
    crashed = False
    for artifact in found:
        if artifact.name.startswith("crash-"):
            crashed = True
            shutil.copyfile(artifact, seeds / artifact.name)
            print(f"CRASH: {(seeds / artifact.name).relative_to(ROOT)}")
        else:
            print(f"to judge by hand: {artifact.relative_to(ROOT)}")
    if fuzzed.returncode != 0 and not found:
        print(f"the fuzzer exited with {fuzzed.returncode} and left no input")
        return 1
    return 1 if crashed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--with-crashes",
        action="store_true",
        help="start from the crash-* files as well as the seeds",
    )
    parser.add_argument(
        "libfuzzer", nargs="*", help="further libFuzzer options, after --"
    )
    args = parser.parse_args()

    set_up()
    # TODO: a run stops at its first crash. libFuzzer's fork mode
    # (-fork=1 -ignore_crashes=1) would go on, but under atheris its workers
    # fail to start (exit 126: libFuzzer re-executes the Python interpreter
    # without the target module), so it is not offered here.
    raise SystemExit(
        run(args.target, args.seconds, args.libfuzzer, with_crashes=args.with_crashes)
    )


if __name__ == "__main__":
    main()
