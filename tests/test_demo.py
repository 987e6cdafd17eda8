"""The whole flow as separate processes, on a generated data set.

The generator plants every kind of problem and writes what each record's
outcome must be; the demo must reach exactly those outcomes through the
department API, with no record left pending.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gateway import pii_scan
from gateway.demo import run_demo
from gateway.samplegen import generate


def _outcomes(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return {
            (r["file"], r["row"]): (r["outcome"], r["reasons"].split(";")[0])
            for r in csv.DictReader(handle)
        }


def test_demo_reaches_the_outcomes_the_data_implies(tmp_path: Path) -> None:
    samples = generate(tmp_path / "samples", seed=11, scale=0.1)

    assert run_demo(samples=samples, out=tmp_path / "out") == 0

    expected = _outcomes(samples / "expected-outcomes.csv")
    actual = _outcomes(tmp_path / "out" / "outcomes.csv")
    assert set(actual) == set(expected)
    wrong = {
        key: (expected[key], actual[key])
        for key in expected
        if expected[key] != actual[key]
    }
    assert wrong == {}
    assert {outcome for outcome, _ in actual.values()} >= {"PAID", "REJECTED", "FAILED"}


def test_nothing_the_demo_leaves_behind_holds_personal_data(tmp_path: Path) -> None:
    samples = generate(tmp_path / "samples", seed=12, scale=0.05)
    out = tmp_path / "out"
    run_demo(samples=samples, out=out)
    values = pii_scan.sample_values(samples)

    # The scanner finds what is there: the input files themselves.
    assert pii_scan.scan(samples / "batches", values)

    # And finds nothing in the demo's state, logs, bank folders and reports:
    # the databases, the exchange folders, outcomes.csv, every log line.
    assert (out / "outcomes.csv").exists()
    assert any(out.rglob("*.db"))
    assert pii_scan.scan(out, values) == []
