"""``bench`` and ``tune``: measure speculative settings on this machine, from the server's timings.

The best speculative setting depends on the model, the binary and the machine (MTP lost on an
M1 Max and on every model under 3B in published numbers), so the launcher measures instead of
trusting a table: each setting runs in its own llama-server with temperature 0, and the
decode t/s reported is the median of ``timings.predicted_per_second``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.binary_probe import Capabilities
from llama_launcher.core.chat_client import ChatError, chat
from llama_launcher.core.failure_reasons import FailureReason
from llama_launcher.core.hardware import Hardware
from llama_launcher.core.launch_planner import PlanSettings, mtp_availability, ngram_availability, plan_launch
from llama_launcher.core.model_info import ModelInfo
from llama_launcher.core.server_process import ServerRunner, ServerState, free_port
from llama_launcher.core.tuning_store import TunedChoice

SPEC_SETTINGS = ("off", "ngram", "mtp", "mtp+ngram", "auto")
MTP_DRAFT_SWEEP = (1, 2, 3, 4, 6)

CODE_PROMPT = """Repeat the following Python code exactly, without any comment before or after it:

```python
def merge_sorted(left, right):
    result = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            result.append(left[i])
            i += 1
        else:
            result.append(right[j])
            j += 1
    result.extend(left[i:])
    result.extend(right[j:])
    return result


def merge_sort(items):
    if len(items) <= 1:
        return items
    middle = len(items) // 2
    left = merge_sort(items[:middle])
    right = merge_sort(items[middle:])
    return merge_sorted(left, right)


if __name__ == "__main__":
    data = [38, 27, 43, 3, 9, 82, 10]
    print(merge_sort(data))
```"""
PROSE_PROMPT = ("Write a short story of about three paragraphs about a lighthouse keeper who finds a message in a "
                "bottle. Use vivid, original language.")


class BenchError(Exception):
    """One line for the user."""


def prompt_text(name: str) -> str:
    if name == "code":
        return CODE_PROMPT
    if name == "prose":
        return PROSE_PROMPT
    path = Path(name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"--prompt must be code, prose or a readable file ({exc.strerror or exc})") from exc


def settings_for(spec: str, base: PlanSettings, draft_n_max: int | None = None) -> PlanSettings:
    s = dataclasses.replace(base)
    if spec == "off":
        s.mtp, s.ngram_mod = "off", "off"
    elif spec == "ngram":
        s.mtp, s.ngram_mod = "off", "on"
    elif spec == "mtp":
        s.mtp, s.ngram_mod = "on", "off"
    elif spec == "mtp+ngram":
        s.mtp, s.ngram_mod = "on", "on"
    elif spec != "auto":
        raise BenchError(f"--spec must be one of {', '.join(SPEC_SETTINGS)}")
    if draft_n_max is not None:
        s.draft_n_max = draft_n_max
    return s


@dataclass
class RunStats:
    decode_tps: float
    prompt_tps: float | None
    predicted_n: int
    draft_n: int
    draft_accepted: int


@dataclass
class BenchResult:
    spec: str
    draft_n_max: int | None
    prompt: str
    argv: list[str]
    runs: list[RunStats] = field(default_factory=list)
    time_to_ready_s: float | None = None

    @property
    def decode_tps(self) -> float:
        return statistics.median(r.decode_tps for r in self.runs) if self.runs else 0.0

    @property
    def prompt_tps(self) -> float | None:
        vals = [r.prompt_tps for r in self.runs if r.prompt_tps is not None]
        return statistics.median(vals) if vals else None

    @property
    def drafted(self) -> int:
        return sum(r.draft_n for r in self.runs)

    @property
    def accepted(self) -> int:
        return sum(r.draft_accepted for r in self.runs)

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "draft_n_max": self.draft_n_max, "prompt": self.prompt, "argv": self.argv,
                "decode_tps": self.decode_tps, "prompt_tps": self.prompt_tps, "drafted": self.drafted,
                "accepted": self.accepted, "acceptance": self.acceptance, "time_to_ready_s": self.time_to_ready_s,
                "runs": [asdict(r) for r in self.runs]}


Log = Callable[[str], None]


class ServerSession:
    """A context manager that runs one planned server and always stops it."""

    def __init__(self, binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                 ready_timeout: float = 300.0, tuned: TunedChoice | None = None) -> None:
        settings = dataclasses.replace(settings, port=free_port())
        self.plan = plan_launch(binary, model, hw, caps, settings, tuned)
        self.runner = ServerRunner(self.plan.argv, ready_timeout=ready_timeout)

    def __enter__(self) -> ServerSession:
        t0 = time.monotonic()
        self.runner.start()
        state = self.runner.wait_until((ServerState.READY, ServerState.FAILED, ServerState.STOPPED), self.runner.ready_timeout + 30)
        if state != ServerState.READY:
            reason = self.runner.reason or FailureReason("timeout", "llama-server did not become ready")
            self.runner.stop()
            raise BenchError(reason.message)
        self.time_to_ready = time.monotonic() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()


def measure(base_url: str, prompt: str, tokens: int, runs: int, api_key: str | None = None) -> list[RunStats]:
    messages = [{"role": "user", "content": prompt}]
    out = []
    for _ in range(runs):
        try:
            res = chat(base_url, messages, max_tokens=tokens, temperature=0.0, api_key=api_key,
                       extra={"seed": 1, "top_k": 1, "cache_prompt": False})
        except ChatError as exc:
            raise BenchError(str(exc)) from exc
        sp = res.speed
        if sp is None or sp.decode_tps is None:
            raise BenchError("the server's response carried no timings")
        out.append(RunStats(sp.decode_tps, sp.prompt_tps, sp.predicted_n or 0, sp.draft_n or 0, sp.draft_accepted or 0))
    return out


def bench(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings, spec: str,
          prompt: str = "code", tokens: int = 256, runs: int = 3, draft_n_max: int | None = None,
          log: Log = lambda s: None, tuned: TunedChoice | None = None) -> BenchResult:
    settings = settings_for(spec, base, draft_n_max)
    text = prompt_text(prompt)
    with ServerSession(binary, model, hw, caps, settings, tuned=tuned) as session:
        log(f"server ready in {session.time_to_ready:.1f} s: {' '.join(session.plan.redacted_argv()[1:])}")
        result = BenchResult(spec, session.plan.speculative.draft_n_max, prompt, session.plan.redacted_argv(),
                             time_to_ready_s=session.time_to_ready)
        measure(session.runner.base_url, "Say hi.", 8, 1, base.api_key)  # warm-up
        result.runs = measure(session.runner.base_url, text, tokens, runs, base.api_key)
    return result


@dataclass
class TuneRow:
    spec: str
    draft_n_max: int | None
    decode_tps: dict[str, float]
    acceptance: dict[str, float | None]
    mean_tps: float
    speedup: float = 1.0

    def label(self) -> str:
        names = {"off": "off", "ngram": "ngram-mod", "mtp": "MTP", "mtp+ngram": "MTP + ngram-mod"}
        s = names.get(self.spec, self.spec)
        return s + (f" n={self.draft_n_max}" if self.draft_n_max and "mtp" in self.spec else "")


def tune_candidates(model: ModelInfo, caps: Capabilities) -> list[tuple[str, int | None]]:
    cands: list[tuple[str, int | None]] = [("off", None)]
    ngram_ok = ngram_availability(caps)[0]
    mtp_ok = mtp_availability(model, caps)[0]
    if ngram_ok:
        cands.append(("ngram", None))
    if mtp_ok:
        cands += [("mtp", n) for n in MTP_DRAFT_SWEEP]
        if ngram_ok and caps.ngram_mod_flavor == "current":
            cands.append(("mtp+ngram", None))  # draft length: the best MTP n, filled in during the sweep
    return cands


def tune(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings,
         tokens: int = 192, runs: int = 1, log: Log = lambda s: None,
         progress: Callable[[int, int], None] = lambda i, n: None,
         cancelled: Callable[[], bool] = lambda: False) -> tuple[TunedChoice, list[TuneRow]]:
    """Measure every supported setting on a code and a prose prompt; return the fastest."""
    cands = tune_candidates(model, caps)
    rows: list[TuneRow] = []
    for i, (spec, n) in enumerate(cands):
        if cancelled():
            raise BenchError("tuning was cancelled")
        if spec == "mtp+ngram":
            mtp_rows = [r for r in rows if r.spec == "mtp"]
            n = max(mtp_rows, key=lambda r: r.mean_tps).draft_n_max if mtp_rows else None
        progress(i, len(cands))
        label = TuneRow(spec, n, {}, {}, 0).label()
        log(f"[{i + 1}/{len(cands)}] {label}: starting llama-server")
        settings = settings_for(spec, base, n)
        with ServerSession(binary, model, hw, caps, settings) as session:
            url = session.runner.base_url
            measure(url, "Say hi.", 8, 1, base.api_key)
            tps: dict[str, float] = {}
            acc: dict[str, float | None] = {}
            for pname in ("code", "prose"):
                stats = measure(url, prompt_text(pname), tokens, runs, base.api_key)
                tps[pname] = statistics.median(s.decode_tps for s in stats)
                drafted = sum(s.draft_n for s in stats)
                acc[pname] = (sum(s.draft_accepted for s in stats) / drafted) if drafted else None
        row = TuneRow(spec, session.plan.speculative.draft_n_max, tps, acc, statistics.mean(tps.values()))
        rows.append(row)
        log(f"[{i + 1}/{len(cands)}] {row.label()}: code {tps['code']:.1f} t/s, prose {tps['prose']:.1f} t/s")
    progress(len(cands), len(cands))
    off = rows[0].mean_tps or 1.0
    for r in rows:
        r.speedup = r.mean_tps / off
    best = max(rows, key=lambda r: r.mean_tps)
    table = [{"setting": r.spec, "label": r.label(), "draft_n_max": r.draft_n_max, "decode_tps": r.decode_tps,
              "acceptance": r.acceptance, "mean_tps": r.mean_tps, "speedup": r.speedup} for r in rows]
    choice = TunedChoice(best.spec, best.draft_n_max, best.speedup, time.strftime("%Y-%m-%d %H:%M:%S"), table)
    return choice, rows
