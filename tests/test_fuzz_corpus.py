"""Replay the fuzz corpus: every seed and every crash found is a regression test.

``fuzz/corpus/<target>/`` holds the seeds of each atheris target and every
crashing input fuzzing found (``crash-<sha1>``). Each file goes through the
target's own ``test_one_input``, the function atheris calls, which swallows
the parser's documented error and lets anything else escape; so a file
passes when the parser read it or refused it properly.

A crash that production code still has is listed in ``FINDINGS`` with what
is wrong, and its replay is ``xfail(strict=True)``: it fails loudly as XPASS
once the bug is fixed, and the entry must then be removed, leaving the file
as a plain regression test. The replay needs no atheris.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


@dataclass(frozen=True)
class Finding:
    """A crash production code still has: what it raises, and why."""

    raises: type[BaseException]
    reason: str


# Crashes production code still has, by (target, corpus file). None is open:
# the crashes fuzzing found (a worksheet that is not XML, a number cell
# holding text, an unsupported zip version, a workbook without an active
# sheet, times in year 1 or after 9999, header timestamps out of range, a
# certificate OpenSSL refuses) are fixed, and their files replay as plain
# regression tests.
FINDINGS: dict[tuple[str, str], Finding] = {}


def target(name: str) -> ModuleType:
    return importlib.import_module(f"fuzz.targets.{name}")


def corpus_files() -> list[object]:
    params: list[object] = []
    for name in TARGETS:
        for path in sorted((CORPUS / name).iterdir()):
            marks = []
            finding = FINDINGS.get((name, path.name))
            if finding is not None:
                marks.append(
                    pytest.mark.xfail(
                        strict=True, raises=finding.raises, reason=finding.reason
                    )
                )
            params.append(
                pytest.param(name, path, marks=marks, id=f"{name}/{path.name}")
            )
    return params


@pytest.mark.parametrize(("name", "path"), corpus_files())
def test_corpus_file_raises_only_the_documented_error(name: str, path: Path) -> None:
    target(name).test_one_input(path.read_bytes())


def test_every_finding_names_a_file_in_the_corpus() -> None:
    missing = [
        f"{name}/{file}"
        for name, file in FINDINGS
        if not (CORPUS / name / file).is_file()
    ]

    assert missing == []


@pytest.mark.parametrize("name", TARGETS)
def test_every_target_has_a_seed_its_parser_reads_or_reaches_deep(name: str) -> None:
    # Seeds that the parser accepts whole are what mutation starts from; a
    # target whose seeds all fail at the first check fuzzes nothing useful.
    module = target(name)
    seeds = sorted((CORPUS / name).glob("seed-*"))
    read = []
    for seed in seeds:
        try:
            module.parse(seed.read_bytes())
        except module.EXPECTED:
            continue
        read.append(seed.name)

    assert seeds, f"fuzz/corpus/{name} has no seeds"
    assert read, f"no seed of {name} is read without an error"


@pytest.mark.parametrize("name", TARGETS)
def test_targets_expect_only_specific_errors(name: str) -> None:
    expected = target(name).EXPECTED

    assert expected
    assert Exception not in expected
    assert BaseException not in expected


@pytest.mark.parametrize("name", TARGETS)
def test_targets_let_other_errors_escape(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = target(name)

    def broken_parser(data: bytes) -> None:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(module, "parse", broken_parser)

    with pytest.raises(RuntimeError, match="a parser bug"):
        module.test_one_input(b"\x00\x00")


def test_the_runner_offers_every_target() -> None:
    from fuzz import run

    assert run.TARGETS == TARGETS
    assert all((CORPUS / name).is_dir() for name in TARGETS)
