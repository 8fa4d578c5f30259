"""Pipeline modules of the end-to-end benchmark (``benchmarks/bench_e2e.py``): the
``kubernetes`` pipeline with other partition counts, and without windows (to split the
worker's CPU between structuring and windows + scoring)."""
