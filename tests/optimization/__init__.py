"""Tests of optimisation: search, walk-forward, diagnostics, executors."""
