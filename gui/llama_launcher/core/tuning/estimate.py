"""Before Tune starts: what it will measure and about how long it will take, said so the user can decide.

Tune loads the model once per setting it measures and writes two replies of ``tokens`` tokens with
each (``tune.py``), so its time is (servers) × (load + replies). Neither is known before the first
server has run; the estimate reads what is known — this model's decode speed from an earlier tune
or launch — and otherwise guesses from the file's size: every decoded token reads all the weights
once, at roughly the memory bandwidth of where they run, and loading reads the file from disk. The
guess is said to be one; once Tune runs, its progress bar gives the real time left.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.methods import BY_ID, combo_label
from llama_launcher.core.speculative.pairing import DraftOption
from llama_launcher.core.tuning.measure import PROMPTS
from llama_launcher.core.tuning.tune import tune_methods

# bytes per second read while decoding (the weights, once per token) and while loading (the file)
BANDWIDTH = {"gpu": 300e9, "apple": 100e9, "cpu": 15e9}
DISK_BYTES_PER_S = 1e9
SERVER_OVERHEAD_S = 3.0  # start, warm-up request, shutdown
LADDER_STEPS = 2  # draft lengths tune usually measures per drafter (the default and one neighbour)


@dataclass(frozen=True)
class TuneEstimate:
    settings: list[str]  # what is measured, in words
    servers: int
    seconds: float
    known_speed: bool  # the decode speed came from a measurement, not the file's size

    def words(self) -> str:
        what = self.settings[0] if len(self.settings) == 1 else ", ".join(self.settings[:-1]) + " and " + self.settings[-1]
        guess = "" if self.known_speed else " (a guess from the model's size; the progress bar then shows the real time left)"
        loads = "once" if self.servers == 1 else f"{self.servers} times"
        return (f"Tune measures {what} on a code and a prose prompt, in llama-servers of its own (the model loads "
                f"{loads}): about {duration_words(self.seconds)} on this machine{guess}. "
                "The fastest is stored for this model and used by Auto from then on.")


def duration_words(seconds: float) -> str:
    if seconds < 60:
        return f"{max(10, int(seconds / 10 + 0.5) * 10)} seconds"
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min"


def estimate_tune(model: ModelInfo, caps: Capabilities, base: PlanSettings, drafts: list[DraftOption] | None,
                  hw: Hardware, tokens: int = 192, decode_tps: float | None = None) -> TuneEstimate:
    """What tune will measure here and about how long it takes (``decode_tps``: this model's known speed)."""
    avail = tune_methods(model, caps, base, drafts)
    drafters = [m for m in avail if BY_ID[m].kind == "model"]
    settings = ["off"] + (["ngram-mod"] if "ngram-mod" in avail else [])
    settings += [f"{combo_label([m])} at {LADDER_STEPS} or more draft lengths" for m in drafters]
    servers = 1 + LADDER_STEPS * len(drafters)  # one for ngram-mod (off is read from its steps) or for off
    where = "apple" if hw.apple_silicon else "gpu" if hw.gpu_branch()[0] else "cpu"
    size = max(model.file_size, 1)
    known = decode_tps is not None and decode_tps > 0
    tps = decode_tps if known and decode_tps is not None else BANDWIDTH[where] / size
    per_server = SERVER_OVERHEAD_S + size / DISK_BYTES_PER_S + (8 + len(PROMPTS) * tokens) / max(tps, 0.1)
    return TuneEstimate(settings, servers, servers * per_server, known)
