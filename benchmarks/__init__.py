"""Benchmarks: scripts that measure edgekd on real data (each run with
`python -m benchmarks.<name>` from the repository root), the saved runs they
produced (`results/`), and the one generator of the published tables
(`python -m benchmarks.report`, behind `make report`)."""
