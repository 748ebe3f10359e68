"""Evaluation: data sets, runs, metrics and reports (``sourcier eval``)."""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "run": ".run",
        "load_dataset": ".datasets",
        "Dataset": ".datasets",
        "Report": ".report",
    },
)
