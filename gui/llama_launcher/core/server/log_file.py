"""The llama-server's log on disk: bounded per line, per run and for the whole folder.

A server that writes ``/dev/urandom`` grew its log to 1.08 GB in 15 s, and old logs were pruned
by count only. So each run keeps the first ``HEAD_BYTES`` of its output (how the server started:
where load errors are) in ``server-….log``, then the latest ``TAIL_BYTES`` to ``2 × TAIL_BYTES``
in ``server-….tail.log`` and ``server-….tail.1.log`` (rotated); lines longer than
``MAX_LINE_BYTES`` are cut where they are read; and the folder keeps at most ``KEEP_LOG_RUNS``
runs and ``MAX_LOG_FOLDER_BYTES`` in all, newest first. A disk that is full or read-only is
said once (a notice); the last lines stay in memory for the window and the failure reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from llama_launcher.core.state.state_files import notice, reason

MAX_LINE_BYTES = 8192
HEAD_BYTES = 8 * 1024 * 1024
TAIL_BYTES = 8 * 1024 * 1024
KEEP_LOG_RUNS = 30
MAX_LOG_FOLDER_BYTES = 256 * 1024 * 1024


def line_cut_note(dropped: int) -> str:
    return f"[the line above went on for {dropped:,} more bytes without a line break; they were dropped]"


class ServerLogFile:
    """One run's log: the head file, then a rotating tail. Never raises; a failure is one notice."""

    def __init__(self, path: Path, fh: TextIO) -> None:
        self.path = path
        self.tail = path.with_name(path.stem + ".tail.log")
        self.old_tail = path.with_name(path.stem + ".tail.1.log")
        self._fh: TextIO | None = fh
        self._written = 0
        self._in_tail = False

    @classmethod
    def open(cls, path: Path) -> ServerLogFile | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls(path, open(path, "w", encoding="utf-8", errors="replace"))
        except OSError as exc:
            _cannot_write(path, exc)
            return None

    def paths(self) -> list[Path]:
        return [self.path, self.tail, self.old_tail]

    def write(self, line: str) -> None:
        fh = self._fh
        if fh is None:
            return
        data = line + "\n"
        try:
            fh.write(data)
            fh.flush()
            self._written += len(data.encode("utf-8", "replace"))
            if self._written >= (TAIL_BYTES if self._in_tail else HEAD_BYTES):
                self._next_file()
        except (OSError, ValueError) as exc:
            _cannot_write(self.tail if self._in_tail else self.path, exc)
            self.close()

    def _next_file(self) -> None:
        """Start the tail (after the head is full) or rotate it (tail -> tail.1)."""
        assert self._fh is not None
        if not self._in_tail:
            self._fh.write(f"[log continues in {self.tail.name}; only the latest lines are kept there]\n")
        self._fh.close()
        self._fh = None
        if self._in_tail:
            os.replace(self.tail, self.old_tail)
        self._fh = open(self.tail, "w", encoding="utf-8", errors="replace")
        self._fh.write(f"[the start of this run's log is in {self.path.name}"
                       + (f"; earlier lines are in {self.old_tail.name}]\n" if self._in_tail else "]\n"))
        self._in_tail = True
        self._written = 0

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None


def _cannot_write(path: Path, exc: BaseException) -> None:
    notice(f"the llama-server log could not be written to {path} ({reason(exc)}); its latest lines are "
           "kept in memory for this session", key=f"server-log:{path.parent}")


def _run_key(path: Path) -> str:
    return path.name.split(".", 1)[0]  # server-<time>-<pid>-<port>, shared by .log, .tail.log, .tail.1.log


def prune_logs(folder: Path, keep: int = KEEP_LOG_RUNS, max_bytes: int = MAX_LOG_FOLDER_BYTES,
               keep_paths: list[Path] | None = None) -> list[Path]:
    """Delete the oldest runs' logs beyond ``keep`` runs or ``max_bytes`` in all; returns what was deleted."""
    runs: dict[str, list[tuple[Path, float, int]]] = {}
    try:
        for p in folder.glob("server-*.log"):
            try:
                st = p.stat()
            except OSError:
                continue
            runs.setdefault(_run_key(p), []).append((p, st.st_mtime, st.st_size))
    except OSError:
        return []
    protected = {_run_key(p) for p in keep_paths or []}
    order = sorted(runs, key=lambda k: (k not in protected, -max(m for _, m, _ in runs[k])))
    deleted: list[Path] = []
    total, full = 0, False
    for i, key in enumerate(order):
        size = sum(s for _, _, s in runs[key])
        full = full or i >= keep or total + size > max_bytes  # from the first run that does not fit, all older go
        if key in protected or not full:
            total += size
            continue
        for p, _, _ in runs[key]:
            try:
                p.unlink()
                deleted.append(p)
            except OSError:
                pass
    return deleted
