"""Measuring one running llama-server: the prompts, one request or a streamed reply, from the server's timings.

Decode t/s is ``timings.predicted_per_second`` (never a stopwatch); a streamed reply also keeps the
server's cumulative per-token timings, so the decode steps that drafted nothing can be told apart
(what ``tune`` reads its baseline from). A reply cut short by Cancel is never a measurement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import Plan, plan_launch
from llama_launcher.core.server.chat_client import ChatError, chat, chat_stream
from llama_launcher.core.server.session import ServerSession, SessionCancelled, SessionFailed
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.measured import SAME_WITHIN, TunedChoice
from llama_launcher.core.speculative.methods import METHODS, SpecMode
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.state.errors import UserFacing

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


TIE = SAME_WITHIN  # settings this close are a tie: the simpler one is kept (and tune must land within it of the best)


class BenchError(UserFacing):
    """One line for the user."""


class Cancelled(BenchError):
    def __init__(self) -> None:
        super().__init__("tuning cancelled")


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
        s.modes = {m.id: (SpecMode.ON if m.id in methods else SpecMode.OFF) for m in METHODS}
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


Log = Callable[[str], None]


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
        check_cancelled(token)  # a reply cut short by Cancel is not a measurement
    sp = res.speed
    if sp is None or sp.decode_tps is None:
        raise BenchError("the server's response carried no timings")
    stats = RunStats(sp.decode_tps, sp.prompt_tps, sp.predicted_n or 0, sp.draft_n or 0, sp.draft_accepted or 0)
    return StreamMeasure(stats, plain_steps(samples))


def check_cancelled(token: CancelToken | None) -> None:
    if token is not None and token.cancelled:
        raise Cancelled()


@contextmanager
def planned_session(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                    tuned: TunedChoice | None = None, drafts: list[DraftOption] | None = None,
                    on_line: Log | None = None, token: CancelToken | None = None,
                    ready_timeout: float = 300.0,
                    avoid: dict[str, str] | None = None) -> Iterator[tuple[Plan, ServerSession]]:
    """Plan ``settings`` on a free port, run that server for the block, stop it whatever happens."""
    plan = plan_launch(binary, model, hw, caps, dataclasses.replace(settings, port=free_port()), tuned, drafts,
                       avoid=avoid)
    try:
        with ServerSession(plan.argv, plan.env, ready_timeout, on_line, token) as session:
            yield plan, session
    except SessionCancelled:
        raise Cancelled() from None
    except SessionFailed as exc:
        raise BenchError(str(exc)) from exc
