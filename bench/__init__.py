"""Benchmarks: each bench_*.py prints its figures and one or more `RESULT {json}` lines."""
