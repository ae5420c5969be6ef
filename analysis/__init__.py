"""Longitudinal analysis of research exports: pure functions of a long-format outcomes table.

Entry points: `analysis.run.analyse(path, out_dir)`, `analysis.power.estimate_power(...)`,
`analysis.simulate.simulate_cohort(...)`, and `analysis.cli.app` (mounted as `tracker analyse`).
See analysis/README.md. This package never imports `tracker`.
"""
