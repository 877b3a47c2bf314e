"""Benchmarks and the load script: `python -m benchmarks.run`, `python -m benchmarks.load`."""
