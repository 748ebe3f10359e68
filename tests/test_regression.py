"""Quality regression gate: the seed set and a PIAF sample, with the real model.

The figures of a fresh run of ``sourcier eval`` (default settings) must not fall below
those recorded in eval/regression.json by more than its tolerance. Re-record them with
``eval/record_regression.py`` after a change meant to move the numbers.
The full PIAF run is not part of CI: ``sourcier eval piaf --split test``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sourcier import Settings
from sourcier.evaluation.report import gate_figures, regressions
from sourcier.evaluation.run import run

BASELINE = Path(__file__).resolve().parents[1] / "eval" / "regression.json"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["seed", "piaf-sample"])
def test_quality_has_not_dropped(dataset: str, tmp_path: Path) -> None:
    recorded = json.loads(BASELINE.read_text(encoding="utf-8"))
    report = run(dataset, settings=Settings(), index=tmp_path / "index", show_progress=False)
    figures = gate_figures(report)
    problems = regressions(figures, recorded["datasets"][dataset], recorded["tolerance"][dataset])
    assert not problems, (
        f"{dataset} quality dropped:\n" + "\n".join(problems) + ("\n\n" + report.to_text())
    )
    # the non-negotiables, whatever was recorded
    assert report.answers is not None and report.answers["quote_mismatches"] == 0
