"""Repeated log lines, folded on screen: the same line again and again is one line with a count.

With ``-lv 4`` llama-server prints ``srv update_slots: all slots are idle`` after every request it
serves, and the window's own ``/metrics`` poll is one a second: about 86,000 lines a day while nothing
happens, and the messages that matter scroll away. So the log view folds a run of lines that are the
same but for llama.cpp's timestamp (``0.27.343.759 I …``) into the first of them and a count
("… 200 times in a row"). Nothing is lost: the run's log file (``log_file.py``) is written before the
window sees a line, and the view still accounts for every line the server printed (``log_batches``'
rule): a folded line counts its repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# llama.cpp's log prefix: "<minutes>.<seconds>.<ms>.<us> " (common/log.cpp with timestamps on), then the level
_STAMP = re.compile(r"^\s*\d+\.\d+\.\d+\.\d+\s+")


def line_key(line: str) -> str:
    """What two lines must share to be "the same line": everything but the leading timestamp."""
    return _STAMP.sub("", line, count=1).rstrip()


def shown(text: str, times: int) -> str:
    """A line as the view shows it: itself, and how often it came in a row when more than once."""
    return text if times <= 1 else f"{text}  … {times:,} times in a row"


@dataclass
class Folded:
    """Lines in a row that are the same: the first as it was printed, and how many times it came."""

    text: str
    times: int = 1

    def shown(self) -> str:
        return shown(self.text, self.times)


@dataclass
class FoldResult:
    more: int = 0  # how many more times the entry shown last came again (the start of these lines)
    entries: list[Folded] = field(default_factory=list)  # new entries, in order

    @property
    def lines(self) -> int:
        """Every line this result accounts for."""
        return self.more + sum(e.times for e in self.entries)


class RepeatFolder:
    """Folds consecutive lines that are the same (timestamps aside), across batches."""

    def __init__(self) -> None:
        self.last: Folded | None = None
        self._last_key: str | None = None
        self.folded = 0  # lines not shown as lines of their own: counted in their entry instead

    def reset(self) -> None:
        self.last, self._last_key, self.folded = None, None, 0

    def break_run(self) -> None:
        """Lines were dropped on the way (log_batches): the next line is not "in a row" with the last one."""
        self.last, self._last_key = None, None

    def add(self, lines: Iterable[str]) -> FoldResult:
        result = FoldResult()
        for line in lines:
            key = line_key(line)
            if self.last is not None and key == self._last_key:
                self.last.times += 1
                self.folded += 1
                if result.entries:
                    continue  # counted in the new entry it belongs to
                result.more += 1
                continue
            self.last, self._last_key = Folded(line), key
            result.entries.append(self.last)
        return result
