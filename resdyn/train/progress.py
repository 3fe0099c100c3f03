"""Per-epoch progress: a live bar on a terminal, plain lines (one per epoch) anywhere else."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``mode``: "bar" (redrawn in place), "lines" (one line per epoch), "off", or "auto" (bar on a tty)."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode
        self.width = width
        self._label = ""
        self._total = 0
        self._t0 = 0.0

    def start(self, label: str, total: int) -> None:
        self._label, self._total, self._t0 = label, total, time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        """Redraw the bar after ``done`` of ``total`` steps (a no-op unless drawing a bar)."""
        if self.mode != "bar":
            return
        elapsed = time.perf_counter() - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = int(self.width * done / max(self._total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self._label} [{bar}] {done}/{self._total} {rate:.1f} steps/s loss {loss:.4f}")
        self.stream.flush()

    def end(self, line: str) -> None:
        """Finish the epoch with ``line`` (replacing the bar)."""
        if self.mode == "off":
            return
        prefix = "\r\033[K" if self.mode == "bar" else ""
        self.stream.write(f"{prefix}{self._label} {line}\n")
        self.stream.flush()

    def warn(self, line: str) -> None:
        """Something the user must see, whatever the mode (progress off included)."""
        prefix = "\r\033[K" if self.mode == "bar" else ""
        self.stream.write(f"{prefix}resdyn: warning: {line}\n")
        self.stream.flush()

    def message(self, line: str) -> None:
        if self.mode != "off":
            self.stream.write(line + "\n")
            self.stream.flush()
