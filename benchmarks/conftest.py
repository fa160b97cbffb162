"""Benchmark options, the rounds policy, and the machine facts saved with the results.

    pytest benchmarks --bench-sizes tiny,medium --benchmark-json=benchmarks/results/cpu.json
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROUNDS = {"tiny": 30, "medium": 15, "large": 5}
ROUNDS_LARGE_F64 = 3
ROUND_SECONDS = {"tiny": 0.02, "medium": 0.05, "large": 0.0}  # iterations fill a round to this


def pytest_addoption(parser):
    parser.addoption("--bench-sizes", default=os.environ.get("BENCH_SIZES", "tiny,medium,large"),
                     help="comma-separated sizes from benchmarks/workloads.py")
    parser.addoption("--bench-dtypes", default=os.environ.get("BENCH_DTYPES", "float32,float64"))


def pytest_benchmark_update_machine_info(config, machine_info):
    versions = {}
    for name in ("numpy", "array_api_strict", "array_api_compat", "torch", "jax", "sklearn",
                 "nnbackprop", "pytest_benchmark"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception as exc:  # noqa: BLE001 - absent is a fact to record
            versions[name] = f"not installed ({type(exc).__name__})"
    machine_info["versions"] = versions
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["platform"] = platform.platform()
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        machine_info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001
        pass
    try:
        import torch
        machine_info["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        pass
