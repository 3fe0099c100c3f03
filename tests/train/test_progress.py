"""Progress output: a bar redrawn in place on a terminal, one plain line per epoch anywhere else."""

import io

from resdyn.train.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal_is_redrawn_in_place():
    out = Terminal()
    progress = Progress("auto", out, width=10)
    progress.start("epoch 1/2", 4)
    progress.update(2, 0.5)
    progress.end("done")
    text = out.getvalue()
    assert text.startswith("\repoch 1/2 [#####.....] 2/4") and "steps/s loss 0.5000" in text
    assert text.endswith("\r\033[Kepoch 1/2 done\n")


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress("auto", out)
    progress.start("epoch 1/2", 4)
    progress.update(2, 0.5)
    progress.end("done")
    assert out.getvalue() == "epoch 1/2 done\n"


def test_off_prints_nothing():
    out = Terminal()
    progress = Progress("off", out)
    progress.start("epoch 1/2", 4)
    progress.update(1, 0.1)
    progress.end("done")
    progress.message("hello")
    assert out.getvalue() == ""
