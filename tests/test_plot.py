"""nnbackprop.plot: PNG files are written and the plotted lines are the history."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")

from nnbackprop import plot  # noqa: E402
from nnbackprop.training import History  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return path.stat().st_size > 100 and data[:8] == PNG_MAGIC


def _history():
    h = History()
    for e, (loss, acc) in enumerate([(1.0, 0.5), (0.6, 0.7), (0.4, 0.9)]):
        h.append(e, {"loss": loss, "accuracy": acc, "val_loss": loss + 0.1, "val_accuracy": acc - 0.1})
    return h


def test_history_lines_equal_the_history_and_png_is_written(tmp_path):
    h = _history()
    path = tmp_path / "curve.png"
    fig = plot.history(h, path=path)
    assert _is_png(path)
    loss_ax, acc_ax = fig.axes
    lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    assert set(lines) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    for key, values in h.history.items():
        np.testing.assert_array_equal(lines[key].get_ydata(), values)
        np.testing.assert_array_equal(lines[key].get_xdata(), [1, 2, 3])
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "accuracy"


def test_history_accepts_the_dict_and_needs_a_loss(tmp_path):
    fig = plot.history({"loss": [3.0, 2.0]})
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["loss"]
    with pytest.raises(ValueError, match="loss"):
        plot.history({"accuracy": [1.0]})


def test_history_of_a_real_fit(tmp_path):
    import nnbackprop as nb
    from nnbackprop import optim

    X = np.random.default_rng(0).standard_normal((40, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nb.Sequential([nb.Dense(2, 4, "tanh"), nb.Dense(4, 2)], seed=0)
    hist = model.fit(X, y, loss="softmax_cross_entropy", optimizer=optim.Adam(1e-2), epochs=4,
                     metrics=["accuracy"], validation_split=0.25, progress=False)
    fig = plot.history(hist, path=tmp_path / "fit.png")
    lines = {ln.get_label(): ln.get_ydata() for ax in fig.axes for ln in ax.get_lines()}
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_array_equal(lines[key], hist[key])
    assert _is_png(tmp_path / "fit.png")


def test_confusion_matrix_counts_and_png(tmp_path):
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    path = tmp_path / "cm.png"
    fig = plot.confusion_matrix(y_true, y_pred, path=path)
    assert _is_png(path)
    counts = np.asarray(fig.axes[0].get_images()[0].get_array())
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    counts, labels = plot.confusion_counts(y_true, y_pred, labels=[2, 1, 0])
    assert labels == [2, 1, 0] and counts[0, 0] == 1 and counts[0, 2] == 1


def test_no_global_pyplot_state():
    import sys

    plot.history({"loss": [1.0]})
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or plt.get_fignums() == []


@pytest.mark.parametrize("name, magic", [("c.svg", b"<?xml"), ("c.pdf", b"%PDF"), ("c.jpg", b"\xff\xd8\xff"),
                                         ("c", PNG_MAGIC), ("sub/dir/c.png", PNG_MAGIC)])
def test_the_suffix_names_the_format(tmp_path, name, magic):
    plot.history(_history(), path=tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_an_unknown_suffix_is_refused_before_writing(tmp_path):
    assert plot.format_of("a/b.PNG") == "png" and "svg" in plot.formats()
    with pytest.raises(ValueError, match=r"cannot write \.xyz images; use one of .*\.png"):
        plot.history(_history(), path=tmp_path / "c.xyz")
    assert list(tmp_path.iterdir()) == []
