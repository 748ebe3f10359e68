"""Evaluation: data sets, runs, metrics and reports (`sourcier eval`)."""
