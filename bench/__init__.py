"""genbus benchmarks: load generator, event timeline recorder, scenarios with targets.

`python -m bench` (or `make bench` / `make bench-smoke`) starts the local stack, runs the
scenarios, writes `bench/results/<scenario>.json` + `.png` and prints the summary table.
"""
