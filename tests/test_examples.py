"""The runnable examples reach what they promise (scikit-learn's bundled data, offline)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def test_digits_reaches_97_percent(be):
    pytest.importorskip("sklearn", reason="scikit-learn (the 'examples' extra) provides the digits set")
    import digits

    result = digits.main(be.module, epochs=30, progress=False)
    assert result["accuracy"] >= 0.97, result


def test_regression_beats_predicting_the_mean():
    pytest.importorskip("sklearn", reason="scikit-learn (the 'examples' extra) provides the diabetes set")
    import regression

    result, r2 = regression.main()
    assert r2 > 0.25 and result["mse"] < 0.75


def test_xor_script_separates_the_classes():
    import xor

    out = np.asarray(xor.main())
    assert list((out[:, 0] > 0.5).astype(int)) == [0, 1, 1, 0]
