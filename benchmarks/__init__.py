"""Benchmarks of nnbackprop against its peers (pytest-benchmark).

    nox -s bench                                   # the whole suite, JSON under benchmarks/results/
    python -m benchmarks.report benchmarks/results/cpu.json   # -> BENCHMARKS.md + PNG

Modules, one concern each:

- ``workloads``: sizes, data, and the nnbackprop cases (forward, backward, step);
- ``peers``: PyTorch eager, JAX jit, hand-written NumPy, the seeds' per-example
  formulation, and the GEMM floor;
- ``memory``: peak memory of one step against what a step must hold;
- ``digits``: end-to-end fit on scikit-learn's digits against ``MLPClassifier``;
- ``report``: saved JSON -> ``BENCHMARKS.md`` and a PNG plot.

A case is built once, outside the clock, and its ``fn`` runs one unit of work
(one forward, one backward or one training step) and synchronises the device
before returning, so the clock never stops on queued work.
"""
