"""Benchmarks of the pipeline stages: `python -m bench` runs every bench/bench_*.py."""
