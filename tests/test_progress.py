"""The progress bar: drawn on a terminal (epoch, bar, loss, rate, ETA), silent otherwise."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    """A perf_counter that says what the test sets."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", c)
    return c


def _line(text):
    """The last line drawn (each draw starts with a carriage return)."""
    return text.rsplit("\r", 1)[-1].rstrip()


def test_bar_text_epoch_fill_rate_and_eta(clock):
    out = Terminal()
    bar = progress.ProgressBar(epochs=2, batches=5, stream=out)
    for b in range(5):  # one batch a second
        clock.now = b + 1.0
        bar.batch(0, b)
        if b == 1:  # 2 of 5 done: int(24 * 2 / 5) = 9 marks; 8 batches left at 1 batch/s
            assert _line(out.getvalue()) == f"epoch 1/2 [{'#' * 9}{'.' * 15}]   1 batch/s  ETA 00:08"
    bar.epoch_end(0, {"loss": 0.123456, "accuracy": 0.75})
    assert _line(out.getvalue()) == f"epoch 1/2 [{'#' * 24}] loss 0.1235  accuracy 0.75  1 batch/s  ETA 00:05"
    clock.now = 5.0 + 150.0  # the next batch after a long wait: 6 in 155 s, 4 left -> 103 s
    bar.batch(1, 0)
    assert _line(out.getvalue()).endswith("0 batch/s  ETA 01:43")
    assert _line(out.getvalue()).startswith(f"epoch 2/2 [{'#' * 4}{'.' * 20}] loss 0.1235")
    bar.close()
    assert out.getvalue().endswith("\n")


def test_redraws_at_most_ten_times_a_second_but_always_at_epoch_end(clock):
    out = Terminal()
    bar = progress.ProgressBar(epochs=1, batches=100, stream=out)
    for b in range(100):
        clock.now = b * 0.01  # 100 batches in one second
        bar.batch(0, b)
    draws = out.getvalue().count("\r")
    assert 9 <= draws <= 11  # every 0.1 s, plus the last batch
    assert _line(out.getvalue()).startswith(f"epoch 1/1 [{'#' * 24}]")


def test_fit_draws_on_a_terminal(be, monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    X = be.asarray(np.random.default_rng(0).standard_normal((12, 2)), "float64")
    T = be.asarray(np.zeros((12, 1)), "float64")
    model = nb.Sequential([nb.Dense(2, 1)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    hist = model.fit(X, T, loss="mse", optimizer=nb.optim.SGD(0.1), epochs=3, batch_size=4)
    text = term.getvalue()
    last = _line(text)
    assert last.startswith(f"epoch 3/3 [{'#' * 24}] loss {hist['loss'][-1]:.4g}  ")
    assert "batch/s  ETA 00:00" in last
    assert "epoch 1/3" in text and "epoch 2/3" in text and text.endswith("\n")


def test_silent_when_not_a_terminal_or_switched_off(be, monkeypatch):
    X = be.asarray(np.ones((4, 2)), "float64")
    T = be.asarray(np.zeros((4, 1)), "float64")
    model = nb.Sequential([nb.Dense(2, 1)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    pipe = io.StringIO()  # isatty() is False: a log file, CI, a notebook capturing output
    monkeypatch.setattr(sys, "stderr", pipe)
    model.fit(X, T, loss="mse", optimizer="sgd", epochs=2)
    assert pipe.getvalue() == ""
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    model.fit(X, T, loss="mse", optimizer="sgd", epochs=2, progress=False)
    assert term.getvalue() == ""
