"""A one-line progress bar: epoch, loss, metrics, rate and ETA.

Writes to a terminal only: silent when ``enabled`` is false or the stream is
not a TTY (logs, CI, notebooks capturing output).
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, epochs: int, batches: int, enabled: bool = True, stream=None, width: int = 24):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = bool(enabled) and isatty()
        self.epochs, self.batches, self.width = epochs, batches, width
        self._start = self._last = time.perf_counter()
        self._done = 0
        self._logs = ""

    def batch(self, epoch: int, b: int) -> None:
        """Called after batch ``b`` (0-based) of ``epoch``; redraws at most 10 times a second."""
        self._done += 1
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= 0.1 or b + 1 == self.batches:
            self._last = now
            self._draw(epoch, b + 1)

    def epoch_end(self, epoch: int, logs: dict) -> None:
        self._logs = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        if self.enabled:
            self._draw(epoch, self.batches)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, epoch: int, b: int) -> None:
        elapsed = time.perf_counter() - self._start
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = self.epochs * self.batches - self._done
        eta = left / rate if rate > 0 else 0.0
        filled = int(self.width * b / max(self.batches, 1))
        bar = "#" * filled + "." * (self.width - filled)
        line = (f"\repoch {epoch + 1}/{self.epochs} [{bar}] {self._logs}  "
                f"{rate:.0f} batch/s  ETA {int(eta) // 60:02d}:{int(eta) % 60:02d}")
        self.stream.write(line.ljust(100))
        self.stream.flush()
