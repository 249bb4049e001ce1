"""Before Tune starts: what it will measure and about how long it will take, said so the user can decide.

What is measured is ``tune.tune_plan``: the stages ``tune`` itself runs, so the question cannot name
fewer (or other) settings than the measurement. Tune loads the model once per server and writes two
replies of ``tokens`` tokens in each, so its time is (servers) × (load + replies); how many servers
depends on what the first ones measure (a chain that beats ngram-mod costs one more, a draft-length
ladder stops where it turns), so the estimate is a range from the fewest to the most. The decode speed
is this model's where one was measured (an earlier tune, replies in Live); otherwise it is guessed
from the file's size: every decoded token reads all the weights once, at roughly the memory
bandwidth of where they run, and loading reads the file from disk. Either way the figure is rough and
said to be; once Tune runs, its progress bar gives the real time left.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.tuning.measure import PROMPTS
from llama_launcher.core.tuning.tune import TunePlan, tune_plan

# bytes per second read while decoding (the weights, once per token) and while loading (the file)
BANDWIDTH = {"gpu": 300e9, "apple": 100e9, "cpu": 15e9}
DISK_BYTES_PER_S = 1e9
SERVER_OVERHEAD_S = 3.0  # start, warm-up request, shutdown


@dataclass(frozen=True)
class TuneEstimate:
    plan: TunePlan
    seconds_per_server: float
    speed_from: str = ""  # where the decode speed came from, in words; "" when it was guessed from the size

    @property
    def settings(self) -> list[str]:
        """What is measured, in words: one entry per stage of tune (tune_plan)."""
        return [s.words for s in self.plan.stages]

    @property
    def servers(self) -> tuple[int, int]:
        """The fewest and the most servers (model loads) tune runs here."""
        return self.plan.fewest, self.plan.most

    @property
    def seconds(self) -> tuple[float, float]:
        return self.plan.fewest * self.seconds_per_server, self.plan.most * self.seconds_per_server

    @property
    def known_speed(self) -> bool:
        return bool(self.speed_from)

    def words(self) -> str:
        """The question's text: one line per stage, then how many loads and about how long."""
        fewest, most = self.servers
        loads = ("once" if most == 1 else f"{most} times") if fewest == most else \
            f"{fewest} to {most} times, as the measurements decide"
        lo, hi = self.seconds
        when = f"about {duration_words(lo)}" if duration_words(lo) == duration_words(hi) else \
            f"between about {duration_words(lo)} and {duration_words(hi)}"
        how = (f"a rough figure from {self.speed_from}" if self.speed_from else
               "a rough guess from the model's size, since no decode speed was measured for it here")
        stages = "\n".join(f"• {s}" for s in self.settings)
        return (f"Tune measures, each on a code and a prose prompt, in llama-servers of its own:\n{stages}\n\n"
                f"The model loads {loads}: {when} on this machine. That is {how}; the progress bar then shows "
                "the real time left. The fastest is stored for this model and used by Auto from then on.")


def duration_words(seconds: float) -> str:
    if seconds < 60:
        return f"{max(10, int(seconds / 10 + 0.5) * 10)} seconds"
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min"


def known_decode_speed(tuned_off_tps: float | None, replies_tps: list[float]) -> tuple[float, str] | None:
    """The decode speed the estimate may read, and where it came from in words: the last tune's "off" for this
    model first, else the median of the replies its last launch decoded (Live's, the launcher's own and other
    clients'; a speculative setting makes them faster than off, so the figure stays rough); None: guess."""
    if tuned_off_tps:
        return tuned_off_tps, f"the {tuned_off_tps:.1f} t/s its last tune measured without speculation"
    speeds = [t for t in replies_tps if t > 0]
    if not speeds:
        return None
    tps = statistics.median(speeds)
    many = f"{len(speeds)} replies" if len(speeds) > 1 else "1 reply"
    return tps, f"the {tps:.1f} t/s this model decoded at in its last launch ({many} in Live)"


def estimate_tune(model: ModelInfo, caps: Capabilities, base: PlanSettings, drafts: list[DraftOption] | None,
                  hw: Hardware, tokens: int = 192, decode_tps: float | None = None,
                  speed_from: str = "") -> TuneEstimate:
    """What tune will measure here and about how long it takes (``decode_tps``: this model's measured speed,
    ``speed_from`` where it was measured, in words)."""
    gpu = hw.gpu_branch()[0]
    plan = tune_plan(model, caps, base, drafts, gpu)
    where = "apple" if hw.apple_silicon else "gpu" if gpu else "cpu"
    size = max(model.file_size, 1)
    known = decode_tps is not None and decode_tps > 0
    tps = decode_tps if known and decode_tps is not None else BANDWIDTH[where] / size
    per_server = SERVER_OVERHEAD_S + size / DISK_BYTES_PER_S + (8 + len(PROMPTS) * tokens) / max(tps, 0.1)
    source = (speed_from or f"the {tps:.1f} t/s measured for this model") if known else ""
    return TuneEstimate(plan, per_server, source)
