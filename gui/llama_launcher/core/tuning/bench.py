"""``bench`` and ``tune``: measure speculative settings on this machine, from the server's timings.

The best speculative setting depends on the model, the binary and the machine (MTP lost on an
M1 Max and on every model under 3B in published numbers), so the launcher measures instead of
trusting a table: each setting runs in its own llama-server (b11434 compiled per-request
speculative parameters out) with temperature 0, and decode t/s comes from
``timings.predicted_per_second``.

``tune`` has to be cheap enough to run on a laptop with a big model, where every server load costs
many seconds, and still land on the fastest setting:

- ngram-mod's lookup costs nothing measurable when it finds no match, so the steps of an ngram-mod
  run that drafted nothing are exactly the steps of a server without speculation: the baseline
  ("off") is read from them (per-token timings), and no server is loaded for "off";
- for the same reason, where ngram-mod helped alone, a model-based drafter (MTP, a head, a draft
  model) is measured chained with it (the chain can only be as fast or faster), and where it did
  not, alone;
- draft lengths climb a ladder from the default outwards and stop once a step does not pay more
  than the noise.

``sweep`` measures every candidate at full length, each in its own server: the reference that
``benchmarks/bench_tune.py`` holds tune against (and what tune did before).
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import (
    PlanSettings,
    availability,
    can_chain,
    default_draft_n,
    plan_launch,
)
from llama_launcher.core.server.chat_client import ChatError, chat
from llama_launcher.core.server.failure_reasons import FailureReason
from llama_launcher.core.server.process import RunnerEvents, ServerRunner, ServerState
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import BY_ID, METHODS, combo_key, combo_label, parse_combo
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.state.command_line import shown_command_line

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
PROMPTS = ("code", "prose")
TIE = 0.03  # settings this close are a tie: the simpler one is kept (and tune must land within it of the best)


class BenchError(Exception):
    """One line for the user."""


class Cancelled(BenchError):
    def __init__(self) -> None:
        super().__init__("tuning cancelled")


class CancelToken:
    """Cancel from any thread: the flag is set and the server in use is stopped at once.

    A queued signal to a busy worker would wait for the very job it should cancel; this does not."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._runner: ServerRunner | None = None

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            runner = self._runner
        if runner is not None:
            threading.Thread(target=runner.stop, kwargs={"grace": 0.5}, name="tune-cancel", daemon=True).start()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def attach(self, runner: ServerRunner | None) -> None:
        with self._lock:
            self._runner = runner
        if runner is not None and self._event.is_set():
            runner.stop(grace=0.5)


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


def settings_for(methods: tuple[str, ...] | None, base: PlanSettings, draft_n_max: int | None = None) -> PlanSettings:
    """``base`` with exactly ``methods`` on and every other method off (None: keep base's modes, i.e. Auto)."""
    s = dataclasses.replace(base, modes=dict(base.modes))
    if methods is not None:
        s.modes = {m.id: ("on" if m.id in methods else "off") for m in METHODS}
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
    """A context manager that runs one planned server and always stops it (also when cancelled)."""

    def __init__(self, binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                 ready_timeout: float = 300.0, tuned: TunedChoice | None = None,
                 drafts: list[DraftOption] | None = None, on_line: Log | None = None,
                 token: CancelToken | None = None) -> None:
        settings = dataclasses.replace(settings, port=free_port())
        self.plan = plan_launch(binary, model, hw, caps, settings, tuned, drafts)
        events = RunnerEvents(on_line=on_line) if on_line is not None else RunnerEvents()
        self.runner = ServerRunner(self.plan.argv, events, ready_timeout=ready_timeout, env=self.plan.env)
        self.token = token
        self.time_to_ready = 0.0

    def __enter__(self) -> ServerSession:
        t0 = time.monotonic()
        if self.token is not None:
            self.token.check()
        self.runner.start()
        if self.token is not None:
            self.token.attach(self.runner)  # after start: a cancel from now on (or just before) stops this process
        state = self.runner.wait_until((ServerState.READY, ServerState.FAILED, ServerState.STOPPED),
                                       self.runner.ready_timeout + 30)
        if self.token is not None and self.token.cancelled:
            self.__exit__()
            raise Cancelled()
        if state is not ServerState.READY:
            reason = self.runner.reason or FailureReason("timeout", "llama-server did not become ready")
            self.__exit__()
            raise BenchError(reason.message)
        self.time_to_ready = time.monotonic() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        if self.token is not None:
            self.token.attach(None)


def measure(base_url: str, prompt: str, tokens: int, runs: int, api_key: str | None = None,
            token: CancelToken | None = None) -> list[RunStats]:
    messages = [{"role": "user", "content": prompt}]
    out = []
    for _ in range(runs):
        try:
            res = chat(base_url, messages, max_tokens=tokens, temperature=0.0, api_key=api_key,
                       extra={"seed": 1, "top_k": 1, "cache_prompt": False})
        except ChatError as exc:
            if token is not None and token.cancelled:
                raise Cancelled() from exc
            raise BenchError(str(exc)) from exc
        sp = res.speed
        if sp is None or sp.decode_tps is None:
            raise BenchError("the server's response carried no timings")
        out.append(RunStats(sp.decode_tps, sp.prompt_tps, sp.predicted_n or 0, sp.draft_n or 0, sp.draft_accepted or 0))
    return out


@dataclass
class StreamMeasure:
    stats: RunStats
    plain_ms: list[float]  # decode steps that drafted nothing and made one token: what "off" costs


def plain_steps(samples: list[tuple[int, float, int]]) -> list[float]:
    """The durations of the decode steps that drafted nothing, from per-token timings.

    ``samples`` are (tokens so far, decode ms so far, drafted so far) per streamed token. The tokens of
    one step (an accepted draft) arrive together, with the same decode time; a step is the time from
    the previous step's last token to its own. A step that made one token and drafted nothing did
    exactly what a server without speculation does."""
    steps: list[tuple[float, int, int]] = []  # (end ms, tokens, drafted so far)
    for _n, ms, drafted in samples:
        if steps and ms - steps[-1][0] < 0.05:  # same step
            steps[-1] = (steps[-1][0], steps[-1][1] + 1, drafted)
        else:
            steps.append((ms, 1, drafted))
    out = []
    for prev, cur in zip(steps, steps[1:], strict=False):
        if cur[1] == 1 and cur[2] == prev[2] and cur[0] > prev[0]:
            out.append(cur[0] - prev[0])
    return out[2:]  # the first steps of a reply still pay for its start


def measure_stream(base_url: str, prompt: str, tokens: int, api_key: str | None = None,
                   token: CancelToken | None = None) -> StreamMeasure:
    """One greedy reply, streamed with the server's cumulative per-token timings (see plain_steps)."""
    from llama_launcher.core.server.chat_client import chat_stream

    samples: list[tuple[int, float, int]] = []

    def on_delta(_text: str, speed: Any) -> None:
        if speed is not None and speed.predicted_n and speed.predicted_ms is not None:
            samples.append((speed.predicted_n, speed.predicted_ms, speed.draft_n or 0))

    try:
        res = chat_stream(base_url, [{"role": "user", "content": prompt}], on_delta, max_tokens=tokens,
                          temperature=0.0, api_key=api_key, extra={"seed": 1, "top_k": 1, "cache_prompt": False})
    except ChatError as exc:
        if token is not None and token.cancelled:
            raise Cancelled() from exc
        raise BenchError(str(exc)) from exc
    if token is not None:
        token.check()  # a reply cut short by Cancel is not a measurement
    sp = res.speed
    if sp is None or sp.decode_tps is None:
        raise BenchError("the server's response carried no timings")
    stats = RunStats(sp.decode_tps, sp.prompt_tps, sp.predicted_n or 0, sp.draft_n or 0, sp.draft_accepted or 0)
    return StreamMeasure(stats, plain_steps(samples))


def bench(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings, spec: str,
          prompt: str = "code", tokens: int = 256, runs: int = 3, log: Log = lambda s: None,
          tuned: TunedChoice | None = None, drafts: list[DraftOption] | None = None) -> BenchResult:
    """Measure one setting: ``auto`` (what a launch would use) or methods such as ``mtp+ngram-mod``.

    The draft length is ``base.draft_n_max`` (None: the plan's default or the measured best)."""
    try:
        methods = None if spec == "auto" else parse_combo(spec)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    settings = settings_for(methods, base)
    text = prompt_text(prompt)
    with ServerSession(binary, model, hw, caps, settings, tuned=tuned if methods is None else None,
                       drafts=drafts) as session:
        log(f"server ready in {session.time_to_ready:.1f} s: {shown_command_line(session.plan.redacted_argv()[1:])}")
        label = combo_key(session.plan.speculative.methods) if methods is None else combo_key(methods)
        result = BenchResult(label, session.plan.speculative.draft_n_max, prompt, session.plan.redacted_argv(),
                             time_to_ready_s=session.time_to_ready)
        measure(session.runner.base_url, "Say hi.", 8, 1, base.api_key)  # warm-up
        result.runs = measure(session.runner.base_url, text, tokens, runs, base.api_key)
    return result


# --- tune ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    methods: tuple[str, ...]
    draft_n_max: int | None = None

    def label(self) -> str:
        return combo_label(self.methods, self.draft_n_max)

    @property
    def simplicity(self) -> tuple[int, int]:
        """Lower is simpler: fewer methods, no second model, shorter drafts."""
        return (len(self.methods) + sum(1 for m in self.methods if BY_ID[m].kind == "model"),
                self.draft_n_max or 0)


@dataclass
class TuneRow:
    candidate: Candidate
    decode_tps: dict[str, float]
    drafted: int
    accepted: int
    tokens: int  # tokens per prompt this row was measured with
    speedup: float = 1.0
    noise: float | None = None  # the uncertainty of the row's speed, where it is known (the baseline)
    plain_ms: list[float] = field(default_factory=list)  # its steps that drafted nothing (streamed runs)
    derived_from: str = ""  # "off" read from another run's plain steps: which one

    @property
    def mean_tps(self) -> float:
        return statistics.mean(self.decode_tps.values()) if self.decode_tps else 0.0

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    def label(self) -> str:
        return self.candidate.label() + (f" (from the {self.derived_from} run's steps without drafts)"
                                         if self.derived_from else "")


    def to_dict(self) -> dict[str, Any]:
        return {"setting": combo_key(self.candidate.methods), "methods": list(self.candidate.methods),
                "label": self.label(), "draft_n_max": self.candidate.draft_n_max, "decode_tps": self.decode_tps,
                "acceptance": self.acceptance, "drafted": self.drafted, "accepted": self.accepted,
                "mean_tps": self.mean_tps, "speedup": self.speedup, "tokens": self.tokens}


@dataclass
class TuneProgress:
    step: int  # 1-based number of the server being measured
    total: int  # the current estimate of how many servers tune will run
    label: str
    stage: str  # "loading", "measuring code", "measuring prose", "done"
    eta_s: float | None  # seconds left, from the time the steps so far took
    done: float = 0.0  # servers' worth of work done, moving within a step (the stage's share)

    @property
    def fraction(self) -> float:
        """How far tune is, 0..1, for a progress bar (the same figure the time left comes from)."""
        return 1.0 if self.stage == "done" else min(self.done / max(self.total, 1), 1.0)

    def text(self) -> str:
        eta = f", about {_fmt_s(self.eta_s)} left" if self.eta_s is not None else ""
        return f"[{self.step}/{self.total}] {self.label}: {self.stage}{eta}"


def _fmt_s(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"


@dataclass
class TuneOutcome:
    choice: TunedChoice
    rows: list[TuneRow]
    servers: int  # server loads tune needed
    wall_s: float
    best: TuneRow | None = None  # the row the choice came from


class _Runner:
    """Runs one candidate in its own server and keeps the progress bookkeeping in one place."""

    def __init__(self, binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings,
                 drafts: list[DraftOption] | None, log: Log, progress: Callable[[TuneProgress], None],
                 on_line: Log | None, token: CancelToken, planned: int) -> None:
        self.args = (binary, model, hw, caps)
        self.base, self.drafts, self.log, self.progress = base, drafts, log, progress
        self.on_line, self.token, self.planned = on_line, token, planned
        self.step = 0
        self.t0 = time.monotonic()

    # how far into one step each stage starts (loading takes about a third of a step here)
    STAGE_SHARE = {"loading": 0.0, "measuring code": 0.35, "measuring prose": 0.7}

    def _report(self, label: str, stage: str) -> None:
        done = max(self.step - 1, 0) + self.STAGE_SHARE.get(stage, 0.0)  # the estimate moves within a step too
        elapsed = time.monotonic() - self.t0
        eta = elapsed / done * max(self.planned - done, 0.0) if done >= 0.3 else None
        self.progress(TuneProgress(self.step, max(self.planned, self.step), label, stage, eta, done))

    def run(self, cand: Candidate, tokens: int, stream: bool = False) -> TuneRow:
        """Measure one candidate on both prompts: one request each (the sweep), or streamed with
        per-token timings so that its steps without drafts are kept apart (tune)."""
        self.token.check()
        self.step += 1
        label = cand.label()
        self._report(label, "loading")
        settings = settings_for(cand.methods, self.base, cand.draft_n_max)
        binary, model, hw, caps = self.args
        with ServerSession(binary, model, hw, caps, settings, drafts=self.drafts, on_line=self.on_line,
                           token=self.token) as session:
            url, key = session.runner.base_url, self.base.api_key
            measure(url, "Say hi.", 8, 1, key, self.token)
            tps: dict[str, float] = {}
            drafted = accepted = 0
            generated: list[int] = []
            plain: list[float] = []
            for pname in PROMPTS:
                self._report(label, f"measuring {pname}")
                if stream:
                    got = measure_stream(url, prompt_text(pname), tokens, key, self.token)
                    stat = got.stats
                    plain += got.plain_ms
                else:
                    stat = measure(url, prompt_text(pname), tokens, 1, key, self.token)[0]
                tps[pname] = stat.decode_tps
                drafted += stat.draft_n
                accepted += stat.draft_accepted
                generated.append(stat.predicted_n)
            n = session.plan.speculative.draft_n_max if any(BY_ID[m].kind == "model" for m in cand.methods) else None
        row = TuneRow(Candidate(cand.methods, n), tps, drafted, accepted, round(statistics.mean(generated)),
                      plain_ms=plain)
        acc = f", {row.acceptance * 100:.0f}% of drafts accepted" if row.acceptance is not None else ""
        self.log(f"[{self.step}/{max(self.planned, self.step)}] {row.label()}: code {tps['code']:.1f} t/s, "
                 f"prose {tps['prose']:.1f} t/s{acc}")
        return row


def tune_methods(model: ModelInfo, caps: Capabilities, base: PlanSettings,
                 drafts: list[DraftOption] | None) -> list[str]:
    """The methods tune can measure here (available for this model and binary)."""
    return [m.id for m in METHODS if availability(m, model, caps, drafts or [], base).ok]


def sweep_candidates(model: ModelInfo, caps: Capabilities, base: PlanSettings,
                     drafts: list[DraftOption] | None = None) -> list[Candidate]:
    """Every candidate at every draft length: what ``sweep`` measures."""
    avail = tune_methods(model, caps, base, drafts)
    cands = [Candidate(())]
    if "ngram-mod" in avail:
        cands.append(Candidate(("ngram-mod",)))
    for mid in avail:
        if BY_ID[mid].kind == "model":
            cands += [Candidate((mid,), n) for n in BY_ID[mid].tune_lengths]
            if "ngram-mod" in avail and can_chain(caps, mid, "ngram-mod"):
                cands.append(Candidate((mid, "ngram-mod")))  # draft length: that method's best, set in the sweep
    return cands


def _finish(rows: list[TuneRow], noise: float, servers: int, t0: float,
            contenders: list[TuneRow] | None = None) -> TuneOutcome:
    """Pick the fastest of ``contenders`` (default: all rows); within the noise, the simplest one."""
    contenders = contenders or rows
    off_row = next((r for r in contenders if not r.candidate.methods), None) or \
        next((r for r in rows if not r.candidate.methods), rows[0])
    for r in rows:
        same_length = off_row if r.tokens == off_row.tokens else \
            next((o for o in rows if not o.candidate.methods and o.tokens == r.tokens), off_row)
        r.speedup = r.mean_tps / (same_length.mean_tps or 1.0)
    best = max(contenders, key=lambda r: r.mean_tps)
    tie = min(max(noise, 0.01), TIE)
    close = [r for r in contenders if r.mean_tps >= best.mean_tps * (1 - tie)]
    pick = min(close, key=lambda r: (r.candidate.simplicity, -r.mean_tps))
    note = ""
    if pick is not best:
        note = (f"{best.label()} measured {(best.mean_tps / pick.mean_tps - 1) * 100:.1f}% faster, within the "
                f"noise ({tie * 100:.0f}%): the simpler {pick.label()} is used")
    margin = noise * 2 ** 0.5 * pick.speedup  # the ratio of two measurements that are each this noisy
    choice = TunedChoice(pick.candidate.methods, pick.candidate.draft_n_max, pick.speedup, margin,
                         measured_at=time.strftime("%Y-%m-%d %H:%M:%S"), table=[r.to_dict() for r in rows], note=note)
    return TuneOutcome(choice, rows, servers, time.monotonic() - t0, pick)


def _noise(off: TuneRow) -> float:
    """The baseline's uncertainty (at least 1%): settings closer than this are a tie."""
    return max(off.noise, 0.01) if off.noise is not None else TIE


def sweep(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings,
          drafts: list[DraftOption] | None = None, tokens: int = 192, log: Log = lambda s: None,
          progress: Callable[[TuneProgress], None] = lambda p: None, on_line: Log | None = None,
          token: CancelToken | None = None) -> TuneOutcome:
    """Measure every candidate at full length (the slow, thorough reference)."""
    t0 = time.monotonic()
    token = token or CancelToken()
    cands = sweep_candidates(model, caps, base, drafts)
    runner = _Runner(binary, model, hw, caps, base, drafts, log, progress, on_line, token, len(cands))
    rows: list[TuneRow] = []
    for cand in cands:
        if len(cand.methods) > 1 and cand.draft_n_max is None:
            mm = cand.methods[0]
            same = [r for r in rows if r.candidate.methods == (mm,)]
            cand = Candidate(cand.methods, max(same, key=lambda r: r.mean_tps).candidate.draft_n_max if same else None)
        rows.append(runner.run(cand, tokens))
    return _finish(rows, _noise(rows[0]), runner.step, t0)


MIN_PLAIN_STEPS = 24  # plain steps needed before the baseline may be read from an ngram-mod run


def _baseline_from(row: TuneRow) -> TuneRow | None:
    """"off" read from a run's steps that drafted nothing, when there were enough of them."""
    steps = sorted(row.plain_ms)
    if len(steps) < MIN_PLAIN_STEPS:
        return None
    trimmed = steps[len(steps) // 10: len(steps) - len(steps) // 10] or steps  # a scheduling hiccup is not decode
    mean_ms = statistics.mean(trimmed)
    tps = 1000.0 / mean_ms if mean_ms > 0 else 0.0
    spread = statistics.pstdev(trimmed) / mean_ms / max(len(trimmed), 1) ** 0.5 if mean_ms > 0 else TIE
    return TuneRow(Candidate(()), {p: tps for p in PROMPTS}, 0, 0, len(steps), noise=2 * spread,
                   derived_from=row.candidate.label())


def _climb(lengths: tuple[int, ...], default: int, measure: Callable[[int], TuneRow], noise: float) -> list[TuneRow]:
    """A draft-length ladder: the default first, then longer drafts while each pays more than the
    noise; if the first longer one did not pay, shorter ones the same way. Returns what it measured."""
    start = min(lengths, key=lambda n: abs(n - default))
    best = measure(start)
    rows = [best]
    for direction in ([n for n in lengths if n > start], [n for n in lengths if n < start][::-1]):
        climbed = False
        for n in direction:
            row = measure(n)
            rows.append(row)
            if row.mean_tps <= best.mean_tps * (1 + noise):
                break  # turned down (or flat): stop this way
            best, climbed = row, True
        if climbed:
            break  # longer drafts paid: no need to look below the default
    return rows


def tune(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, base: PlanSettings,
         drafts: list[DraftOption] | None = None, tokens: int = 192,
         log: Log = lambda s: None, progress: Callable[[TuneProgress], None] = lambda p: None,
         on_line: Log | None = None, token: CancelToken | None = None) -> TuneOutcome:
    """Find the fastest setting with as few server loads as the measurements allow (module docstring)."""
    t0 = time.monotonic()
    token = token or CancelToken()
    avail = tune_methods(model, caps, base, drafts)
    model_methods = [m for m in avail if BY_ID[m].kind == "model"]
    gpu = hw.gpu_branch()[0]
    runner = _Runner(binary, model, hw, caps, base, drafts, log, progress, on_line, token,
                     planned=1 + 3 * len(model_methods))
    ngram: TuneRow | None = None
    off: TuneRow | None = None
    if "ngram-mod" in avail:
        ngram = runner.run(Candidate(("ngram-mod",)), tokens, stream=True)
        off = _baseline_from(ngram)
        if off is not None:
            log(f"off: {off.mean_tps:.1f} t/s, read from {off.tokens} steps of the ngram-mod run that drafted nothing")
    if off is None:
        runner.planned += 1
        off = runner.run(Candidate(()), tokens, stream=True)
    rows = [off] + ([ngram] if ngram is not None else [])
    noise = _noise(off)
    with_ngram = ngram is not None and ngram.mean_tps > off.mean_tps * (1 + noise)
    for i, mid in enumerate(model_methods):
        chain = ("ngram-mod",) if with_ngram and can_chain(caps, mid, "ngram-mod") else ()

        def at_length(n: int, mid: str = mid, chain: tuple[str, ...] = chain) -> TuneRow:
            return runner.run(Candidate((mid, *chain), n), tokens, stream=True)

        rows += _climb(BY_ID[mid].tune_lengths, default_draft_n(gpu), at_length, noise)
        runner.planned = runner.step + 3 * (len(model_methods) - i - 1)
    outcome = _finish(rows, noise, runner.step, t0)
    progress(TuneProgress(runner.step, runner.step, outcome.choice.label(), "done", 0.0))
    return outcome
