"""Benchmarks: ratios measured side by side in one run, printed as tables docs/benchmarks.md quotes."""
