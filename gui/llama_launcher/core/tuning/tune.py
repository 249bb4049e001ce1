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
  than the noise (never past a DFlash/DSpark head's block size, where llama.cpp clamps the draft);
- the newer ngram types (ngram-simple, -map-k, -map-k4v, -cache) are screened in one server, chained:
  llama.cpp's own per-type statistics (its log at verbosity 4) say which of them drafted what was
  accepted, and only when the chain beat ngram-mod is its leader measured alone; so they cost one or
  two loads, not four.

``sweep`` measures every candidate at full length, each in its own server: the reference that
``benchmarks/bench_tune.py`` holds tune against (and what tune did before).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.models.sidecar import block_clamp
from llama_launcher.core.plan.speculative import availability, can_chain, default_draft_n
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.measured import MeasuredRow, TunedChoice
from llama_launcher.core.speculative.methods import BY_ID, BY_TOKEN, METHODS, combo_key, combo_label
from llama_launcher.core.speculative.pairing import DraftOption, head_for
from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.tuning.measure import (
    PROMPTS,
    TIE,
    Log,
    check_cancelled,
    measure,
    measure_stream,
    planned_session,
    prompt_text,
    settings_for,
)


@dataclass(frozen=True)
class TuneCandidate:
    """One speculative setting Tune measures: its methods and draft length (not a llama-server
    candidate, which is llama_server/discovery.Candidate)."""
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
    candidate: TuneCandidate
    decode_tps: dict[str, float]
    drafted: int
    accepted: int
    tokens: int  # tokens per prompt this row was measured with
    speedup: float = 1.0
    noise: float | None = None  # the uncertainty of the row's speed, where it is known (the baseline)
    plain_ms: list[float] = field(default_factory=list)  # its steps that drafted nothing (streamed runs)
    derived_from: str = ""  # "off" read from another run's plain steps: which one
    accepted_by: dict[str, int] = field(default_factory=dict)  # method id -> tokens its drafts got accepted

    @property
    def mean_tps(self) -> float:
        return statistics.mean(self.decode_tps.values()) if self.decode_tps else 0.0

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    def label(self) -> str:
        return self.candidate.label() + (f" (from the {self.derived_from} run's steps without drafts)"
                                         if self.derived_from else "")


    def measured(self) -> MeasuredRow:
        """The row as the tuning store keeps it (and the window shows it)."""
        return MeasuredRow(combo_key(self.candidate.methods), self.label(), dict(self.decode_tps), self.speedup,
                           list(self.candidate.methods), self.candidate.draft_n_max, self.acceptance, self.drafted,
                           self.accepted, self.mean_tps, self.tokens)


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


class _TuneRun:
    """Measures one candidate at a time, each in its own server, and keeps the progress bookkeeping."""

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

    def run(self, cand: TuneCandidate, tokens: int, stream: bool = False) -> TuneRow:
        """Measure one candidate on both prompts: one request each (the sweep), or streamed with
        per-token timings so that its steps without drafts are kept apart (tune)."""
        check_cancelled(self.token)
        self.step += 1
        label = cand.label()
        self._report(label, "loading")
        settings = settings_for(cand.methods, self.base, cand.draft_n_max)
        binary, model, hw, caps = self.args
        with planned_session(binary, model, hw, caps, settings, drafts=self.drafts, on_line=self.on_line,
                             token=self.token) as (plan, session):
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
            n = plan.speculative.draft_n_max if any(BY_ID[m].kind == "model" for m in cand.methods) else None
            by_type = accepted_by_type(list(session.runner.history))
        row = TuneRow(TuneCandidate(cand.methods, n), tps, drafted, accepted, round(statistics.mean(generated)),
                      plain_ms=plain, accepted_by=by_type)
        acc = f", {row.acceptance * 100:.0f}% of drafts accepted" if row.acceptance is not None else ""
        self.log(f"[{self.step}/{max(self.planned, self.step)}] {row.label()}: code {tps['code']:.1f} t/s, "
                 f"prose {tps['prose']:.1f} t/s{acc}")
        return row


# llama.cpp's per-type statistics after each request (common_speculative_print_stats, at verbosity 4):
# "statistics     ngram-simple: #calls(b,g,a) = ... #acc tokens =   148, ..."; counters grow per server
_STATS = re.compile(r"statistics\s+(?P<type>[a-z0-9-]+): .*?#acc tokens =\s*(?P<acc>\d+)")


def accepted_by_type(lines: list[str]) -> dict[str, int]:
    """Tokens accepted from each speculative type's drafts, from the server's last statistics lines."""
    out: dict[str, int] = {}
    for line in lines:
        m = _STATS.search(line)
        if m and m.group("type") in BY_TOKEN:
            out[BY_TOKEN[m.group("type")].id] = int(m.group("acc"))
    return out


def tune_methods(model: ModelInfo, caps: Capabilities, base: PlanSettings,
                 drafts: list[DraftOption] | None) -> list[str]:
    """The methods tune can measure here (available for this model and binary)."""
    return [m.id for m in METHODS if availability(m, model, caps, drafts or [], base).ok]


def sweep_candidates(model: ModelInfo, caps: Capabilities, base: PlanSettings,
                     drafts: list[DraftOption] | None = None) -> list[TuneCandidate]:
    """Every candidate at every draft length: what ``sweep`` measures."""
    avail = tune_methods(model, caps, base, drafts)
    cands = [TuneCandidate(())]
    cands += [TuneCandidate((mid,)) for mid in avail if BY_ID[mid].kind == "ngram"]
    for mid in avail:
        if BY_ID[mid].kind == "model":
            cands += [TuneCandidate((mid,), n) for n in lengths_for(mid, drafts)]
            if "ngram-mod" in avail and can_chain(caps, mid, "ngram-mod"):
                cands.append(TuneCandidate((mid, "ngram-mod")))  # draft length: that method's best, set in the sweep
    return cands


@dataclass(frozen=True)
class TuneStage:
    """One stage of :func:`tune`: the settings it may measure and how many servers it loads for them."""
    words: str
    candidates: tuple[tuple[str, ...], ...]  # the method combinations it may measure (draft lengths aside)
    fewest: int
    most: int
    likely: int  # what the progress bar counts on before the measurements decide
    ladder: str = ""  # the model-based method whose draft lengths this stage climbs


@dataclass(frozen=True)
class TunePlan:
    """What :func:`tune` will measure here, stage by stage, before anything ran: the question before Tune
    (estimate.py) and tune's own progress read it, so what is asked and what is measured are one list."""
    stages: tuple[TuneStage, ...]

    @property
    def fewest(self) -> int:
        return sum(s.fewest for s in self.stages)

    @property
    def most(self) -> int:
        return sum(s.most for s in self.stages)

    @property
    def likely(self) -> int:
        return sum(s.likely for s in self.stages)

    def candidates(self) -> set[tuple[str, ...]]:
        return {c for s in self.stages for c in s.candidates}


def _newer_ngram(avail: list[str]) -> list[str]:
    return [m for m in avail if BY_ID[m].kind == "ngram" and m != "ngram-mod"]


def _ladder_counts(lengths: tuple[int, ...], default: int) -> tuple[int, int]:
    """The fewest and most servers :func:`_climb` loads on this ladder, over every way its steps can turn out."""
    counts = set()
    for outcome in range(2 ** len(lengths)):
        seen: list[int] = []

        def step(n: int, outcome: int = outcome, seen: list[int] = seen) -> TuneRow:
            i = len(seen)
            seen.append(n)
            pays = i == 0 or outcome >> i & 1  # a step that pays is faster than every step before it
            return TuneRow(TuneCandidate(()), {"code": float(10 ** (i + 1)) if pays else 0.0}, 0, 0, 0)

        _climb(lengths, default, step, 0.0)
        counts.add(len(seen))
    return min(counts), max(counts)


def tune_plan(model: ModelInfo, caps: Capabilities, base: PlanSettings, drafts: list[DraftOption] | None,
              gpu: bool) -> TunePlan:
    """Every stage :func:`tune` runs here, with the settings each may measure (module docstring)."""
    avail = tune_methods(model, caps, base, drafts)
    newer = _newer_ngram(avail)
    stages: list[TuneStage] = []
    ngram_combos: list[tuple[str, ...]] = []
    if "ngram-mod" in avail:
        stages.append(TuneStage("ngram-mod, and off (no speculation) to compare with: read from ngram-mod's steps "
                                "that proposed nothing, or in a server of its own when there were too few",
                                (("ngram-mod",), ()), 1, 2, 1))
        ngram_combos.append(("ngram-mod",))
    else:
        stages.append(TuneStage("off", ((),), 1, 1, 1))
    if newer:
        together = tuple(newer)
        stages.append(TuneStage(combo_label(together) + (" together" if len(newer) > 1 else ""), (together,), 1, 1, 1))
        ngram_combos.append(together)
        if len(newer) > 1:
            than = "ngram-mod" if "ngram-mod" in avail else "off"
            stages.append(TuneStage(f"the one of them whose drafts were accepted most, alone, if together they beat {than}",
                                    tuple((m,) for m in newer), 0, 1, 0))
            ngram_combos += [(m,) for m in newer]
    for mid in (m for m in avail if BY_ID[m].kind == "model"):
        lengths = lengths_for(mid, drafts)
        fewest, most = _ladder_counts(lengths, default_draft_n(gpu))
        chains = [c for c in ngram_combos if all(can_chain(caps, mid, g) for g in c)]
        span = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        words = f"{BY_ID[mid].label} at {span} of the draft lengths {', '.join(map(str, lengths))}" + \
            (", chained with the fastest ngram setting where one helped" if chains else "")
        stages.append(TuneStage(words, ((mid,), *((mid, *c) for c in chains)), fewest, most, min(3, most),
                                mid))
    return TunePlan(tuple(stages))


def lengths_for(mid: str, drafts: list[DraftOption] | None) -> tuple[int, ...]:
    """The draft lengths tune tries for a method: its table's, none past a DFlash/DSpark head's block."""
    lengths = BY_ID[mid].tune_lengths
    head = head_for(mid, drafts or []) if BY_ID[mid].needs == "head" else None
    clamp = block_clamp(head.model) if head is not None else None
    if clamp is None:
        return lengths
    return tuple(n for n in lengths if n <= clamp) or (clamp,)


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
                         measured_at=time.strftime("%Y-%m-%d %H:%M:%S"), table=[r.measured() for r in rows], note=note)
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
    runner = _TuneRun(binary, model, hw, caps, base, drafts, log, progress, on_line, token, len(cands))
    rows: list[TuneRow] = []
    for cand in cands:
        if len(cand.methods) > 1 and cand.draft_n_max is None:
            mm = cand.methods[0]
            same = [r for r in rows if r.candidate.methods == (mm,)]
            cand = TuneCandidate(cand.methods, max(same, key=lambda r: r.mean_tps).candidate.draft_n_max if same else None)
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
    return TuneRow(TuneCandidate(()), {p: tps for p in PROMPTS}, 0, 0, len(steps), noise=2 * spread,
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
    newer = _newer_ngram(avail)
    gpu = hw.gpu_branch()[0]
    plan = tune_plan(model, caps, base, drafts, gpu)  # the stages below, as the question before Tune said them
    ladders = {s.ladder: s.likely for s in plan.stages if s.ladder}
    runner = _TuneRun(binary, model, hw, caps, base, drafts, log, progress, on_line, token, planned=plan.likely)
    ngram: TuneRow | None = None
    off: TuneRow | None = None
    if "ngram-mod" in avail:
        ngram = runner.run(TuneCandidate(("ngram-mod",)), tokens, stream=True)
        off = _baseline_from(ngram)
        if off is not None:
            log(f"off: {off.mean_tps:.1f} t/s, read from {off.tokens} steps of the ngram-mod run that drafted nothing")
    if off is None:
        runner.planned += 1
        off = runner.run(TuneCandidate(()), tokens, stream=True)
    rows = [off] + ([ngram] if ngram is not None else [])
    noise = _noise(off)
    rows += _screen_newer_ngram(runner, newer, tokens, max(rows, key=lambda r: r.mean_tps), noise, log)
    best_ngram = max((r for r in rows if r.candidate.methods), key=lambda r: r.mean_tps, default=None)
    helped = best_ngram is not None and best_ngram.mean_tps > off.mean_tps * (1 + noise)
    for i, mid in enumerate(model_methods):
        chain = best_ngram.candidate.methods if helped and best_ngram is not None and \
            all(can_chain(caps, mid, g) for g in best_ngram.candidate.methods) else ()

        def at_length(n: int, mid: str = mid, chain: tuple[str, ...] = chain) -> TuneRow:
            return runner.run(TuneCandidate((mid, *chain), n), tokens, stream=True)

        rows += _climb(lengths_for(mid, drafts), default_draft_n(gpu), at_length, noise)
        runner.planned = runner.step + sum(ladders[m] for m in model_methods[i + 1:])
    outcome = _finish(rows, noise, runner.step, t0)
    progress(TuneProgress(runner.step, runner.step, outcome.choice.label(), "done", 0.0))
    return outcome


def _screen_newer_ngram(runner: _TuneRun, newer: list[str], tokens: int, best: TuneRow, noise: float,
                        log: Log) -> list[TuneRow]:
    """The newer ngram types in one server, chained; their leader alone only when the chain beat ``best``."""
    if not newer:
        return []
    chain = runner.run(TuneCandidate(tuple(newer)), tokens, stream=True)
    rows = [chain]
    if chain.mean_tps <= best.mean_tps * (1 + noise):
        log(f"the newer ngram types together ({chain.mean_tps:.1f} t/s) did not beat {best.label()} "
            f"({best.mean_tps:.1f} t/s): not measured one by one")
        return rows
    scored = {m: n for m, n in chain.accepted_by.items() if m in newer and n > 0}
    if len(newer) > 1 and scored:
        leader = max(scored, key=lambda m: scored[m])
        log(f"{BY_ID[leader].label} drafted most of what was accepted ({scored[leader]} tokens): measured alone")
        runner.planned += 1
        rows.append(runner.run(TuneCandidate((leader,)), tokens, stream=True))
    return rows
