"""examples/quantile.py: the pinball model at q = 0.9 covers 85-95 % of held-out targets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def test_quantile_example_covers_its_share(be):
    import quantile

    coverage = quantile.main(be.module, device=be.device, epochs=60, n=1000, batch_size=128)
    assert 0.85 <= coverage[0.9] <= 0.95, coverage
    assert 0.05 <= coverage[0.1] <= 0.15, coverage
