"""Record the quality figures the CI regression gate compares against (eval/regression.json).

Runs ``sourcier.evaluate.run`` with the default settings and the real model on the two
gate sets, exactly as tests/test_regression.py does, and writes their figures. Re-record
only after a change that is meant to move the numbers, and say so in the commit:

    .venv/bin/python eval/record_regression.py
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from sourcier import Settings
from sourcier.evaluation.report import gate_figures
from sourcier.evaluation.run import machine_info, run

HERE = Path(__file__).resolve().parent
DATASETS = ("seed", "piaf-sample")
# allowed absolute drop before the gate fails; one seed question is 1/49 = 0.02 of the
# answerable and 1/12 = 0.083 of the unanswerable questions
TOLERANCE = {
    "seed": {"default": 0.03, "refusal_recall": 0.09, "false_refusal_rate": 0.03},
    "piaf-sample": {"default": 0.02, "false_refusal_rate": 0.02},
}


def main() -> None:
    settings = Settings()
    payload = {
        "about": "Figures recorded by eval/record_regression.py; tests/test_regression.py fails "
        "when a run is worse by more than the tolerance.",
        "settings": asdict(settings),
        "machine": machine_info(),
        "tolerance": TOLERANCE,
        "datasets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in DATASETS:
            report = run(name, settings=settings, index=Path(tmp) / name)
            payload["datasets"][name] = gate_figures(report)
            print(report.to_text())
    out = HERE / "regression.json"
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
