"""The decisions issue 24 put in core, without Qt: Auto's port, folded log lines, other clients' speeds,
which controls apply, what Tune found and what accepting it changes.

The window's tests (test_window_reads_right.py, test_window_acts.py) check that these reach the screen.
"""

from __future__ import annotations

import socket

import pytest

from llama_launcher.core.host import network
from llama_launcher.core.server.log_repeats import RepeatFolder, line_key


def test_auto_keeps_the_last_port_while_it_is_free_and_moves_to_a_neighbour_when_not() -> None:
    last = network.free_port()
    assert network.auto_port(last) == network.AutoPort(last)
    assert network.auto_port(last).note() == ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", last))
        holder.listen(1)
        moved = network.auto_port(last)
        assert moved.port != last and moved.port > last and moved.moved_from == last
        assert moved.note().startswith(f"Auto moved to port {moved.port}: port {last}, which it used last time")
    fresh = network.auto_port(None)
    assert fresh.moved_from is None and network.port_is_free(fresh.port)


def test_repeats_fold_across_batches_and_count_every_line() -> None:
    folder = RepeatFolder()
    first = folder.add(["0.01.000.001 I srv  update_slots: all slots are idle",
                        "0.02.000.001 I srv  update_slots: all slots are idle"])
    assert [(e.text, e.times) for e in first.entries] == [("0.01.000.001 I srv  update_slots: all slots are idle", 2)]
    assert first.lines == 2  # at the time it was returned (its entry may grow with later lines)
    second = folder.add(["0.03.000.001 I srv  update_slots: all slots are idle", "0.04.000.000 I other line",
                         "0.05.000.000 I other line"])
    assert second.more == 1 and [(e.text, e.times) for e in second.entries] == [("0.04.000.000 I other line", 2)]
    assert second.lines == 3 and folder.folded == 3
    assert first.entries[0].shown().endswith("all slots are idle  … 3 times in a row")  # grew in the later batch
    folder.break_run()  # lines were dropped between: the next one starts its own entry
    assert folder.add(["0.06.000.000 I other line"]).entries[0].times == 1


def test_only_the_timestamp_is_ignored() -> None:
    assert line_key("0.27.343.759 I srv  update_slots: all slots are idle") == "I srv  update_slots: all slots are idle"
    assert line_key("line 7 srv update_slots") == "line 7 srv update_slots"  # no timestamp: the line itself
    assert line_key("0.27.343.759 W srv  x") != line_key("0.27.343.759 I srv  x")  # the level counts


def _metrics(prompt_n: float, prompt_s: float, predicted_n: float, predicted_s: float,
             drafted: float = 0, accepted: float = 0) -> dict[str, float]:
    """A /metrics snapshot with the counters llama-server b11434 exports (names from tools/server/server-task.cpp;
    a real one is read in test_window_acts.py)."""
    return {"llamacpp:prompt_tokens_total": prompt_n, "llamacpp:prompt_seconds_total": prompt_s,
            "llamacpp:tokens_predicted_total": predicted_n, "llamacpp:tokens_predicted_seconds_total": predicted_s,
            "llamacpp:spec_decode_num_draft_tokens_total": drafted,
            "llamacpp:spec_decode_num_accepted_tokens_total": accepted,
            "llamacpp:requests_processing": 1, "llamacpp:predicted_tokens_seconds": 60.0}


def test_an_outside_requests_prompt_is_joined_to_its_reply() -> None:
    """Point 4: llama-server counts the prompt when it is processed and the reply when the request ends, so
    they move in different polls; the reply shown carries the prompt's speed."""
    from llama_launcher.core.server.activity import OtherClients

    traffic = OtherClients()
    assert traffic.update(_metrics(0, 0, 0, 0)) is None  # the first poll only sets the baseline
    assert traffic.update(_metrics(26, 0.1511, 0, 0)) is None  # the prompt: no reply yet
    assert traffic.update(_metrics(26, 0.1511, 0, 0)) is None  # still generating
    got = traffic.update(_metrics(26, 0.1511, 64, 1.0, drafted=10, accepted=8))
    assert got is not None and got.prompt_tps == 26 / 0.1511 and got.prompt_n == 26
    assert got.decode_tps == 64.0 and got.predicted_n == 64 and got.acceptance == 0.8
    nxt = traffic.update(_metrics(52, 0.3511, 96, 1.5, drafted=10, accepted=8))  # a short one: both in one poll
    assert nxt is not None and nxt.prompt_tps == 26 / 0.2 and nxt.decode_tps == 64.0 and nxt.acceptance is None
    assert traffic.update(_metrics(0, 0, 0, 0)) is None  # counters went back (a restarted server): no reply


def test_the_charts_caption_says_what_it_shows() -> None:
    """Point 5: one reply is '1 reply, just now', not 'last 0 s'; several say how many and over what time."""
    from llama_launcher.core.server.activity import OTHERS, TRY_IT, Activity
    from llama_launcher.core.server.speed_stats import Speed

    a = Activity()
    assert a.caption() == "no replies yet"
    a.add(OTHERS, Speed(decode_tps=60.0, predicted_n=64), at=1000.0)
    assert a.caption(now=1001.0) == "1 reply, just now" and a.bars() == [(OTHERS, 60.0)]
    for i in range(5):  # an 8-second streamed reply: one bar that grows, not 5 points
        a.add(TRY_IT, Speed(decode_tps=50.0 + i, predicted_n=100 * i), at=1010.0 + 2 * i, streaming=True)
    assert a.bars() == [(OTHERS, 60.0), (TRY_IT, 54.0)] and a.caption(now=1018.0).startswith("the last 2 replies")
    a.add(TRY_IT, Speed(decode_tps=55.0, predicted_n=480), at=1018.0)
    assert a.caption(now=1020.0) == "the last 2 replies, over 18 s (the latest just now)"
    assert [r[1] for r in a.rows()] == [TRY_IT, OTHERS]  # newest first


def tuned_ngram_mod():
    """A tune result as tune() makes it (its own rows and _finish): ngram-mod fast on code, no faster on prose,
    off read from the ngram-mod run's steps that drafted nothing."""
    from llama_launcher.core.tuning.tune import TuneCandidate, TuneRow, _finish

    ngram = TuneRow(TuneCandidate(("ngram-mod",)), {"code": 26.9, "prose": 5.4}, drafted=900, accepted=850, tokens=192)
    off = TuneRow(TuneCandidate(()), {"code": 5.3, "prose": 5.2}, 0, 0, 180, noise=0.01, derived_from="ngram-mod")
    off.tokens = 192
    return _finish([off, ngram], 0.01, 1, 0.0).choice


def test_tunes_result_names_each_workloads_ratio() -> None:
    """Point 6: not "+199% ± 196% vs off" (an average over code and prose), but each workload against off."""
    choice = tuned_ngram_mod()
    assert choice.methods == ("ngram-mod",)
    assert choice.result_lines() == ["Fastest on this machine: ngram-mod",
                                     "Code: 26.9 t/s against 5.3 off — 5.08× as fast",
                                     "Prose: 5.4 t/s against 5.2 off — 1.04× as fast"]
    assert choice.describe() == "measured: ngram-mod (code 5.08×, prose 1.04× vs off)"
    off_row = choice.off_row()
    assert off_row is not None and off_row.short_label() == "off"
    assert off_row.how_measured() == "read from the ngram-mod run's steps that drafted nothing"


def test_ratio_words_say_the_same_within_the_noise() -> None:
    from llama_launcher.core.speculative.measured import ratio_words

    assert ratio_words(1.01) == "the same within the noise" and ratio_words(0.5) == "2.00× slower"


def test_use_this_names_what_it_changes() -> None:
    """Point 6: ngram-mod set Off by hand keeps the measurement out; accepting it sets the modes back to Auto."""
    from llama_launcher.core.plan.adopt import adopt_tuned
    from llama_launcher.core.settings.launch import ModelSettings
    from llama_launcher.core.speculative.methods import SpecMode

    choice = tuned_ngram_mod()
    blocked = adopt_tuned(ModelSettings(modes={"ngram-mod": SpecMode.OFF}, threads=2), choice)
    assert blocked.changes == ["ngram-mod: Off → Auto"] and not blocked.in_effect
    assert blocked.settings.modes == {} and blocked.settings.threads == 2
    assert blocked.words().startswith("Not in effect: your own settings win over it (ngram-mod: Off → Auto)")
    assert adopt_tuned(ModelSettings(), choice).in_effect
    mtp = TunedChoice_mtp()
    n = adopt_tuned(ModelSettings(draft_n_max=5), mtp)
    assert n.changes == ["draft length: 5 → the measured 2"] and n.settings.draft_n_max is None


def TunedChoice_mtp():  # noqa: N802 - a made result for one test
    from llama_launcher.core.speculative.measured import TunedChoice

    return TunedChoice(("mtp",), 2, 1.3)


def test_the_tune_estimate_counts_servers_and_says_a_guess_is_a_guess(tmp_path) -> None:
    from llama_launcher.core.host.hardware import Hardware
    from llama_launcher.core.llama_server.probe import probe
    from llama_launcher.core.models.model_info import read_model_info
    from llama_launcher.core.settings.launch import PlanSettings
    from llama_launcher.core.tuning.estimate import duration_words, estimate_tune

    from fake_server import make_fake_server
    from gguf_factory import write_model

    caps = probe(str(make_fake_server(tmp_path / "bin", "b11434-current")))
    model = read_model_info(write_model(tmp_path / "m.gguf", arch="qwen35", name="M", blocks=3, nextn=1))
    hw = Hardware(cpu="test", ram_total_mib=8000, ram_available_mib=6000, apple_silicon=False, backend_devices=[])
    guess = estimate_tune(model, caps, PlanSettings(), [], hw)
    assert guess.settings[0].startswith("ngram-mod, and off (no speculation) to compare with") and guess.settings[-1].startswith("MTP at ")
    assert guess.servers == (5, 8)  # ngram-mod (+ off when its plain steps are too few), the newer types (+ their leader), MTP 3 or 4
    assert "That is a rough guess from the model's size" in guess.words() and "\n• MTP at 3 to 4 of the draft lengths" in guess.words()
    known = estimate_tune(model, caps, PlanSettings(), [], hw, decode_tps=10.0)
    assert known.known_speed and "guess" not in known.words() and "the 10.0 t/s measured for this model" in known.words()
    per = 3.0 + model.file_size / 1e9 + (8 + 2 * 192) / 10.0
    assert known.seconds == pytest.approx((5 * per, 8 * per))
    assert duration_words(25) == "30 seconds" and duration_words(61) == "1 minute" and duration_words(3700) == "1 h 02 min"


def test_the_stored_auto_port_is_checked_like_every_other_field() -> None:
    """AppSettings.auto_port comes from a user-editable file: a wrong type or a number that is not a port
    falls back (Auto picks a new one) with a notice, and a good one is kept."""
    import json

    from llama_launcher.core.settings import store
    from llama_launcher.core.state.state_files import drain_notices

    drain_notices()
    for value, kept in ((41234, 41234), ("41234", 0), (70000, 0), (True, 0)):
        store.settings_file().parent.mkdir(parents=True, exist_ok=True)
        store.settings_file().write_text(json.dumps({"version": 2, "auto_port": value}), encoding="utf-8")
        assert store.load().auto_port == kept, value
        notes = drain_notices()
        assert (notes == []) == (kept == value), (value, notes)
