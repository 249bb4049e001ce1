"""Turn a llama-server's exit and log into one line a person understands, with the proof.

Users of other launchers get "failed to load" and dig in log files; the launcher matches the
server's own messages (see docs/llama-server-eras.md, "Failures") and quotes the lines it matched.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class FailureReason:
    code: str
    message: str
    evidence: list[str] = field(default_factory=list)


_SIGNAL_TEXT = {
    "SIGILL": "killed by SIGILL (illegal instruction): this llama-server was built for a newer CPU; "
    "build one on this machine (llama-launcher get-server) or install your platform's package",
    # SIGKILL is also kill -9, a task manager or a container limit: memory is named only with evidence
    "SIGKILL": "killed by SIGKILL (by another program or by the system; nothing shows it ran out of memory)",
    "SIGSEGV": "crashed with SIGSEGV (segmentation fault)",
    "SIGABRT": "aborted (SIGABRT): llama-server hit an internal error",
    "SIGBUS": "crashed with SIGBUS (bus error)",
}


def signal_reason(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"killed by signal {signum}"
    return _SIGNAL_TEXT.get(name, f"killed by {name}")


PORT_WAY_OUT = "choose another port or stop that program"  # after every "port N is already in use" line

# (code, pattern, message template). Order matters: the first match wins.
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    ("port_in_use", re.compile(r"couldn't bind HTTP server socket(?:, hostname: (?P<host>\S+), port: (?P<port>\d+))?", re.I),
     "port {port} is already in use by another program; " + PORT_WAY_OUT),
    ("removed_argument", re.compile(r'error while handling argument "(?P<arg>[^"]+)": the argument has been removed\.?\s*(?P<hint>.*)', re.I),
     "llama-server no longer accepts {arg}: {hint}"),
    ("unknown_spec_type", re.compile(r'unknown speculative type:\s*(?P<type>\S+)', re.I),
     "this llama-server does not know the speculative type '{type}'; update llama.cpp or pick another type"),
    ("bad_argument", re.compile(r'error while handling argument "(?P<arg>[^"]+)":\s*(?P<msg>.*)', re.I),
     "llama-server rejected {arg}: {msg}"),
    ("unknown_argument", re.compile(r"error: invalid argument: (?P<arg>\S+)", re.I),
     "this llama-server does not know the argument {arg}; remove it or update llama.cpp"),
    ("no_mtp_layers", re.compile(r"doesn't contain MTP layers", re.I),
     "the model has no MTP layers: turn MTP off for this model (MTP needs a model exported with its MTP head)"),
    ("draft_load_failed", re.compile(r"failed to load draft model,? '(?P<path>[^']+)'", re.I),
     "the drafter {path} could not be loaded (see the log lines below)"),
    ("internal_check", re.compile(r'GGML_ASSERT\((?P<what>.{1,200}?)\) failed', re.I),
     "llama-server stopped on one of its internal checks: {what}"),
    ("not_gguf", re.compile(r"invalid magic characters|not a GGUF|failed to read magic", re.I),
     "the model file is not a GGUF file or is corrupt"),
    ("model_missing", re.compile(r"failed to open GGUF file|(?:gguf|model).*No such file or directory", re.I),
     "the model file is missing or cannot be opened"),
    ("out_of_memory", re.compile(r"out of memory|insufficient memory|failed to allocate|cudaMalloc failed|failed to create_context|unable to allocate", re.I),
     "out of memory while loading: lower the context size, offload fewer layers, or choose a smaller quantization"),
    ("corrupt_model", re.compile(r"corrupted|tensor .* data is not within the file bounds|failed to load model", re.I),
     "llama-server could not load the model (see the log lines below)"),
]


def classify_log(lines: Iterable[str]) -> FailureReason | None:
    """The most specific reason the log shows, with the matching lines as evidence."""
    lines = list(lines)
    for code, pattern, template in _PATTERNS:
        for line in lines:
            m = pattern.search(line)
            if m:
                fields = {k: (v or "?").strip().rstrip(".") for k, v in m.groupdict().items()}
                message = template.format(**fields) if fields else template
                if code == "port_in_use" and fields.get("port") == "?":
                    message = "the port is already in use by another program"
                evidence = [ln for ln in lines if pattern.search(ln)][:3]
                return FailureReason(code, message, evidence)
    return None


def killing_signal(returncode: int | None) -> int | None:
    """The signal that ended a child: negative codes from Python, or a shell's 128+N (not on Windows)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if sys.platform != "win32" and returncode > 128 and returncode - 128 in (4, 6, 9, 11):
        return returncode - 128
    return None


def describe_exit(returncode: int) -> str:
    """A one-line meaning of an exit status (signals named; SIGILL explained)."""
    signum = killing_signal(returncode)
    return signal_reason(signum) if signum is not None else f"exited with status {returncode}"


_SIGKILL = int(getattr(signal, "SIGKILL", 9))  # Windows has no SIGKILL
OOM_KILL_TEXT = "killed by SIGKILL, most likely by the system's out-of-memory killer"


def classify_exit(returncode: int | None, lines: Iterable[str], oom_evidence: list[str] | None = None) -> FailureReason:
    """Why the server ended: the log first (it says more), then the exit status.

    ``oom_evidence`` (see ``oom_evidence.gather``) is what shows that a SIGKILL was for memory;
    without it a SIGKILL is only called a SIGKILL.
    """
    lines = list(lines)
    from_log = classify_log(lines)
    if from_log is not None:
        return from_log
    signum = killing_signal(returncode)
    if signum == _SIGKILL and oom_evidence:
        return FailureReason("out_of_memory_killed", f"{OOM_KILL_TEXT} ({'; '.join(oom_evidence)})",
                             [*oom_evidence, *lines[-3:]][:5])
    if signum is not None:
        return FailureReason("signal", signal_reason(signum), lines[-3:])
    tail = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    msg = f"llama-server exited with status {returncode}"
    if tail:
        msg += f": {tail[:200]}"
    return FailureReason("exited", msg, lines[-3:])


# --- did speculation stop the server? -----------------------------------------------------------------

# words of llama.cpp's speculative code in a failing line: MTP and its NextN tensors, draft models and
# heads, the speculative types and flags (b11434: "MIMO2 MTP block missing nextn.eh_proj", "failed to
# load draft model", "failed to create MTP context", "tensor 'blk.2.nextn.enorm.weight' not found")
_SPEC_WORDS = re.compile(r"\bMTP\b|nextn|\bdraft\b|draft model|speculat|--spec-|eagle3|dflash|dspark|eh_proj", re.I)
# a line that reports a failure (llama.cpp's " E " level, errors, asserts, aborts)
_FAILING = re.compile(r"(?:^|\s)E\s|error|failed|abort|assert|exception|terminate|exiting", re.I)
_HEALTHY = re.compile(r"draft acceptance|statistics\s|adding speculative implementation", re.I)


def speculation_evidence(lines: Iterable[str], crashed: bool = False) -> list[str]:
    """The log lines that put a failed start down to speculative decoding (at most three).

    A failing line that names MTP, its NextN tensors, a draft model or head, or a speculative
    type/flag; when the process crashed (a signal) with no such line, the last lines before the end
    that name them (the crash happened while that part was being set up)."""
    lines = [ln for ln in lines if not _HEALTHY.search(ln)]
    found = [ln for ln in lines if _FAILING.search(ln) and _SPEC_WORDS.search(ln)]
    if not found and crashed:
        found = [ln for ln in lines[-5:] if _SPEC_WORDS.search(ln)]
    return found[:3]
