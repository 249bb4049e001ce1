"""The question before Tune names what Tune measures and counts the servers it loads (Qt-free).

Tune's stages (core/tuning/tune.py ``tune_plan``) are what the estimate says; here ``tune`` itself runs
with a stand-in for its one-server-per-candidate runner, over many ways the measurements can turn out,
and every setting it measured and every count of servers it loaded must be one the estimate named.
"""

from __future__ import annotations

import random

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.methods import combo_label
from llama_launcher.core.tuning import tune as tune_mod
from llama_launcher.core.tuning.estimate import estimate_tune
from llama_launcher.core.tuning.tune import MIN_PLAIN_STEPS, TuneCandidate, TuneRow, tune_plan

from fake_server import HELP_DIR

NEWER = ("ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-cache")
HW = Hardware(cpu="test", ram_total_mib=8000, ram_available_mib=6000, apple_silicon=False, backend_devices=[])


def caps_of(era: str):
    return capabilities_from_help("/bin/s", (HELP_DIR / f"{era}.help.txt").read_text(),
                                  (HELP_DIR / f"{era}.version.txt").read_text())


def model(nextn: int = 0, size: int = 253_000_000) -> ModelInfo:
    return ModelInfo(path="/m.gguf", name="m", file_name="m.gguf", folder="/", parameters=268_000_000,
                     trunk_parameters=268_000_000, nextn_predict_layers=nextn, block_count=18, file_size=size)


class _Runner:
    """tune's runner, standing in: each server gives speeds drawn from ``rng``, nothing is started."""
    rng = random.Random(0)

    def __init__(self, *args, planned: int = 0, **kw) -> None:
        self.planned, self.step, self.seen = planned, 0, []
        _Runner.last = self

    def run(self, cand: TuneCandidate, tokens: int, stream: bool = False) -> TuneRow:
        self.step += 1
        self.seen.append(cand.methods)
        tps = self.rng.choice([50.0, 80.0, 100.0, 130.0, 200.0])
        plain = [10.0] * (MIN_PLAIN_STEPS if self.rng.random() < 0.7 else 3)
        by = {m: self.rng.randint(0, 200) for m in cand.methods} if len(cand.methods) > 1 else {}
        return TuneRow(TuneCandidate(cand.methods, cand.draft_n_max), {"code": tps, "prose": tps * 1.1}, 10, 5,
                       tokens, plain_ms=plain, accepted_by=by)


@pytest.mark.parametrize("era,nextn", [("b11434-recorded", 0), ("b11434-recorded", 1), ("b9093-post-rename", 1),
                                       ("b8000-legacy-ngram", 0)])
def test_the_question_names_every_setting_tune_measures_and_counts_its_servers(monkeypatch, era, nextn) -> None:
    caps, m = caps_of(era), model(nextn)
    plan = tune_plan(m, caps, PlanSettings(), [], False)
    monkeypatch.setattr(tune_mod, "_TuneRun", _Runner)
    measured: set[tuple[str, ...]] = set()
    counts: set[int] = set()
    for _ in range(400):
        out = tune_mod.tune("/bin/s", m, HW, caps, PlanSettings(), [])
        seen = _Runner.last.seen
        assert set(seen) <= plan.candidates(), (set(seen) - plan.candidates())
        assert plan.fewest <= len(seen) == out.servers <= plan.most
        measured |= set(seen) | {r.candidate.methods for r in out.rows}
        counts.add(len(seen))
    assert measured == plan.candidates()  # nothing named that tune never measures
    assert counts == set(range(plan.fewest, plan.most + 1))  # the range said is the range that happens
    estimate = estimate_tune(m, caps, PlanSettings(), [], HW)
    assert estimate.servers == (plan.fewest, plan.most)
    words = estimate.words()
    for methods in plan.candidates():
        if len(methods) <= 1 or set(methods) == set(NEWER) & set(methods):  # single settings and the newer chain
            assert combo_label(methods) in words, (combo_label(methods), words)


def test_a_build_with_the_newer_ngram_types_is_asked_about_all_of_them() -> None:
    """The walk's case: Gemma 3 270m on b11434 — the question said 'off and ngram-mod' and one load, and the
    tune measured the newer types' chain and its leader, three loads."""
    estimate = estimate_tune(model(), caps_of("b11434-recorded"), PlanSettings(), [], HW)
    words = estimate.words()
    assert "ngram-simple + ngram-map-k + ngram-map-k4v + ngram-cache together" in words
    assert "the one of them whose drafts were accepted most, alone, if together they beat ngram-mod" in words
    assert estimate.servers == (2, 4) and "The model loads 2 to 4 times, as the measurements decide" in words
    assert "a rough guess from the model's size" in words
    lo, hi = estimate.seconds
    assert hi == pytest.approx(2 * lo)


def test_a_measured_speed_is_used_and_said_and_the_time_counts_every_server() -> None:
    caps, m = caps_of("b11434-recorded"), model(nextn=1)
    plan = tune_plan(m, caps, PlanSettings(), [], False)
    est = estimate_tune(m, caps, PlanSettings(), [], HW, decode_tps=77.8, speed_from="77.8 t/s in Live")
    per = 3.0 + m.file_size / 1e9 + (8 + 2 * 192) / 77.8
    assert est.seconds == pytest.approx((plan.fewest * per, plan.most * per))
    assert est.known_speed and "a rough figure from 77.8 t/s in Live" in est.words() and "guess" not in est.words()
    assert "MTP at 3 to 4 of the draft lengths 1, 2, 3, 4, 6, chained with the fastest ngram setting" in est.words()


def test_the_speed_measured_for_this_model_is_used_first_and_said() -> None:
    """The walk's case: Live showed 77.8 t/s from an outside client, the server was stopped, then Tune asked
    and guessed from the file's size. The replies of the last launch count once it has stopped too."""
    from llama_launcher.core.tuning.estimate import known_decode_speed

    assert known_decode_speed(None, []) is None
    assert known_decode_speed(None, [0.0]) is None
    assert known_decode_speed(None, [77.8]) == (77.8, "the 77.8 t/s this model decoded at in its last launch (1 reply in Live)")
    tps, words = known_decode_speed(None, [70.0, 77.8, 200.0])  # type: ignore[misc]
    assert tps == 77.8 and "3 replies" in words  # the median: one fast reply (a repeated prompt) is not the rate
    assert known_decode_speed(74.0, [77.8])[0] == 74.0  # type: ignore[index]  # the last tune's off comes first
