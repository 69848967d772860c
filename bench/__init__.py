"""jobsvc vs RQ benchmark, run as `python -m bench` from the repo root (see docs/benchmarks.md)."""
