"""Tune's decisions on recorded numbers: plain steps, the draft-length ladder, ties and margins.

The end-to-end proof (the real server, tune against the full sweep in the same run) is
``benchmarks/bench_tune.py`` and the tune tests in test_cli/test_gui; these pin the rules.
"""

from __future__ import annotations

from llama_launcher.core.tuning.measure import plain_steps
from llama_launcher.core.tuning.tune import (
    MIN_PLAIN_STEPS,
    TuneCandidate,
    TuneRow,
    _baseline_from,
    _climb,
    _finish,
)


def row(methods: tuple[str, ...], tps: float, n: int | None = None, **kw) -> TuneRow:
    return TuneRow(TuneCandidate(methods, n), {"code": tps, "prose": tps}, 0, 0, 192, **kw)


def test_plain_steps_are_steps_that_made_one_token_and_drafted_nothing() -> None:
    # (tokens so far, decode ms so far, drafted so far): a plain step every 30 ms, then an accepted
    # draft of 4 tokens (the same ms), then a rejected draft (one token, drafted count grows)
    samples = [(1, 0.0, 0), (2, 30.0, 0), (3, 60.0, 0), (4, 90.0, 0), (5, 120.0, 0),
               (6, 150.0, 4), (7, 150.0, 4), (8, 150.0, 4), (9, 150.0, 4),
               (10, 185.0, 8), (11, 215.0, 8), (12, 245.0, 8)]
    # steps: 30, 30, 30, 30 (plain), 30 (the accepted draft: 4 tokens), 35 (drafted), 30, 30 (plain)
    assert plain_steps(samples) == [30.0, 30.0, 30.0, 30.0]  # the first two of the reply are left out


def test_the_baseline_is_read_from_enough_plain_steps_only() -> None:
    ngram = row(("ngram-mod",), 60.0, plain_ms=[25.0] * MIN_PLAIN_STEPS)
    off = _baseline_from(ngram)
    assert off is not None and not off.candidate.methods and round(off.mean_tps, 6) == 40.0
    assert "ngram-mod" in off.label() and "without drafts" in off.label()
    assert _baseline_from(row(("ngram-mod",), 60.0, plain_ms=[25.0] * (MIN_PLAIN_STEPS - 1))) is None


def test_the_ladder_climbs_from_the_default_and_stops_when_it_turns() -> None:
    speeds = {1: 90.0, 2: 100.0, 3: 110.0, 4: 118.0, 6: 117.0}
    seen: list[int] = []

    def measure(n: int) -> TuneRow:
        seen.append(n)
        return row(("mtp",), speeds[n], n)

    rows = _climb((1, 2, 3, 4, 6), 3, measure, 0.01)
    assert seen == [3, 4, 6]  # longer drafts paid, then turned: nothing below the default
    assert max(rows, key=lambda r: r.mean_tps).candidate.draft_n_max == 4
    seen.clear()
    speeds.update({2: 115.0, 1: 112.0, 4: 100.0})
    _climb((1, 2, 3, 4, 6), 3, measure, 0.01)
    assert seen == [3, 4, 2, 1]  # the longer one lost: look below, until it turns


def test_within_the_noise_the_simpler_setting_is_kept_and_said() -> None:
    rows = [row((), 50.0, noise=0.02), row(("ngram-mod",), 100.0), row(("mtp", "ngram-mod"), 102.0, 3)]
    outcome = _finish(rows, 0.02, 3, 0.0)
    assert outcome.choice.methods == ("ngram-mod",) and "within the noise" in outcome.choice.note
    assert abs(outcome.choice.speedup - 2.0) < 1e-9 and outcome.choice.margin > 0
    clear = _finish([row((), 50.0), row(("ngram-mod",), 100.0), row(("mtp", "ngram-mod"), 120.0, 3)], 0.02, 3, 0.0)
    assert clear.choice.methods == ("mtp", "ngram-mod") and clear.choice.note == ""


# --- the newer ngram types and the block clamp (issue 22, item 3) ------------------------------------

LOGS = __import__("pathlib").Path(__file__).parent / "fixtures" / "logs"


def test_the_per_type_statistics_of_b11434_say_who_drafted_what_was_accepted() -> None:
    from llama_launcher.core.tuning.tune import accepted_by_type

    # recorded: the demo model, the five ngram types chained, the code prompt, -lv 4
    lines = (LOGS / "b11434-ngram-chain-statistics.log").read_text().splitlines()
    assert accepted_by_type(lines) == {"ngram-simple": 148, "ngram-map-k": 0, "ngram-map-k4v": 0, "ngram-mod": 0,
                                       "ngram-cache": 32}


class _Runs:
    """Stands in for tune's one-server-per-candidate runner: what each candidate measured is given."""

    def __init__(self, speeds: dict[tuple[str, ...], float], accepted: dict[str, int]) -> None:
        self.speeds, self.accepted, self.seen, self.planned = speeds, accepted, [], 0

    def run(self, cand: TuneCandidate, tokens: int, stream: bool = False) -> TuneRow:
        self.seen.append(cand.methods)
        r = row(cand.methods, self.speeds[cand.methods])
        r.accepted_by = dict(self.accepted) if len(cand.methods) > 1 else {}
        return r


NEWER = ["ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-cache"]


def test_the_newer_ngram_types_cost_one_load_when_they_do_not_beat_ngram_mod() -> None:
    from llama_launcher.core.tuning.tune import _screen_newer_ngram

    runs = _Runs({tuple(NEWER): 95.0}, {"ngram-simple": 100})
    rows = _screen_newer_ngram(runs, NEWER, 192, row(("ngram-mod",), 100.0), 0.02, lambda s: None)  # type: ignore[arg-type]
    assert runs.seen == [tuple(NEWER)] and len(rows) == 1


def test_when_the_chain_wins_its_leader_is_measured_alone_and_can_be_picked() -> None:
    from llama_launcher.core.tuning.tune import _screen_newer_ngram

    runs = _Runs({tuple(NEWER): 130.0, ("ngram-simple",): 128.0}, {"ngram-simple": 148, "ngram-cache": 32})
    said: list[str] = []
    rows = _screen_newer_ngram(runs, NEWER, 192, row(("ngram-mod",), 100.0), 0.02, said.append)  # type: ignore[arg-type]
    assert runs.seen == [tuple(NEWER), ("ngram-simple",)] and runs.planned == 1
    assert "ngram-simple drafted most of what was accepted (148 tokens)" in said[0]
    outcome = _finish([row((), 50.0, noise=0.02), row(("ngram-mod",), 100.0), *rows], 0.02, 3, 0.0)
    assert outcome.choice.methods == ("ngram-simple",)  # within the noise of the chain, and simpler


def test_the_sweep_measures_every_ngram_type_and_tune_stays_within_half_its_loads() -> None:
    from llama_launcher.core.llama_server.probe import capabilities_from_help
    from llama_launcher.core.models.model_info import ModelInfo
    from llama_launcher.core.settings.launch import PlanSettings
    from llama_launcher.core.tuning.tune import sweep_candidates

    from fake_server import HELP_DIR

    caps = capabilities_from_help("/bin/s", (HELP_DIR / "b11434-recorded.help.txt").read_text())
    m = ModelInfo(path="/m.gguf", name="m", file_name="m.gguf", folder="/", parameters=9_000_000_000,
                  trunk_parameters=9_000_000_000, nextn_predict_layers=1, block_count=33)
    cands = sweep_candidates(m, caps, PlanSettings(), [])
    singles = {c.methods for c in cands if len(c.methods) == 1 and c.methods[0].startswith("ngram")}
    assert singles == {("ngram-mod",), *((t,) for t in NEWER)}
    # off, 5 ngram types, MTP at 5 lengths, MTP + ngram-mod: 12 servers; tune's most: ngram-mod, the newer
    # types' screen and their leader, MTP's ladder (3 lengths) = 6, half (bench_tune.py measures it)
    assert len(cands) == 12


def test_tune_does_not_try_draft_lengths_past_a_heads_block_size(tmp_path) -> None:
    import dataclasses

    from llama_launcher.core.models.model_info import read_model_info
    from llama_launcher.core.speculative.pairing import DraftOption
    from llama_launcher.core.tuning.tune import lengths_for

    from gguf_factory import write_model

    head = read_model_info(write_model(tmp_path / "h.gguf", arch="dflash", tokens=8,
                                       extra_kv={"dflash.block_size": 6, "dflash.target_hidden_size": 8}))
    opts = [DraftOption(head, "dflash", True, "fits")]
    assert lengths_for("dflash", opts) == (4,)  # DFlash's (4, 8), clamped at 6 - 1
    assert lengths_for("dflash", [DraftOption(dataclasses.replace(head, arch_meta={}), "dflash", True, "")]) == (4, 8)
    assert lengths_for("mtp", opts) == (1, 2, 3, 4, 6)
