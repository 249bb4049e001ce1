"""Which Launch setup controls apply to this model, llama-server and machine, and why not: decided here.

A control that cannot change what is launched is greyed with the reason in words beside it; the
window only shows these answers. The cases a new user tripped over: ngram-mod's n-match, n-min
and n-max editable with ngram-mod Off; "GPU layers: Auto (--fit)" offered on a machine without a
GPU; the speculative controls shown with "Auto" for a file that is not a model at all; and a draft
length row that said "n/a (no drafter)" under "In effect: ngram-mod" (ngram-mod drafts, by its
own n-min and n-max; the draft length is what MTP, a head or a draft model propose); the newer ngram
types' knobs and the drafters' knobs (minimum, confidence, sampling, KV cache type) greyed with no reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.speculative import Availability, SpeculativeDecision
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.methods import BY_ID, METHODS, SpecMode, SpecSource, combo_label


@dataclass(frozen=True)
class Applies:
    ok: bool
    why: str = ""  # why not, in words ('' when it applies, or when nothing is known yet)


@dataclass(frozen=True)
class DraftLength:
    applies: bool
    words: str  # what the row says: the length in effect, or why it does not apply
    value: int | None = None  # the length in effect (the slider shows it), when one is


@dataclass(frozen=True)
class LaunchControls:
    setup: Applies  # the model can be set up at all
    ngram_knobs: Applies  # ngram-mod's
    gpu_layers: Applies
    draft_length: DraftLength
    method_knobs: dict[str, Applies] = field(default_factory=dict)  # every ngram-kind method with knobs
    drafter_knobs: Applies = Applies(False)  # the model-based drafters' minimum, confidence, sampling, KV cache


def setup_applies(model: ModelInfo | None) -> Applies:
    if model is None:
        return Applies(False, "Select a model in the list on the left to set up its launch (the list says how to "
                              "add one when it is empty).")
    if model.error:  # the reason itself is said once, under the model's name (explain_text): not again here
        return Applies(False, f"There is nothing to set up for {model.file_name}: it cannot be launched (the reason "
                              "is under its name above). Select another model, or download this one again.")
    return Applies(True)


def ngram_knobs(spec: SpeculativeDecision | None, settings: ModelSettings,
                available: dict[str, Availability], mid: str = "ngram-mod", said_above: bool = False) -> Applies:
    """Whether an ngram method's knobs (ngram-mod's n-match/n-min/n-max, …) change this launch.

    ``said_above``: the method's own switch sits right above its knobs and says why Auto leaves it off,
    so the knobs' line does not say it again."""
    a = available.get(mid)
    label = BY_ID[mid].label
    if a is None:
        return Applies(False)
    if not a.ok:
        return Applies(False, f"{label} cannot run here: {a.reason}")
    if settings.mode(mid) is SpecMode.OFF:
        return Applies(False, f"{label} is Off: set it to Auto or On to use these")
    if spec is not None and spec.source is not SpecSource.USER and mid not in spec.methods:
        if said_above:
            return Applies(False, f"{label} does not run now, so its knobs do not apply")
        why = spec.auto_off.get(mid, "it is not in effect")
        return Applies(False, f"{label} does not run now: {why}")
    return Applies(True)


MODEL_DRAFTERS = "MTP, a head or a draft model"


def drafter_knobs(spec: SpeculativeDecision | None, available: dict[str, Availability]) -> Applies:
    """Whether the drafters' knobs (draft minimum, confidence, sampling, KV cache type) change this launch:
    they tune a model-based drafter (MTP, a head, a draft model), so they apply only while one runs."""
    if spec is None:
        return Applies(False)
    drafting = [BY_ID[m] for m in spec.methods if BY_ID[m].kind == "model"]
    if drafting:
        return Applies(True)
    if spec.source is SpecSource.USER:
        return Applies(False, "your extra arguments choose the speculative types, and none of them is "
                              f"{MODEL_DRAFTERS}: these apply only to those")
    can = [BY_ID[mid].label for mid, a in available.items() if mid in BY_ID and BY_ID[mid].kind == "model" and a.ok]
    if not can:
        return Applies(False, f"these tune {MODEL_DRAFTERS}, and none can run for this model here")
    return Applies(False, f"these tune {MODEL_DRAFTERS}; none runs now (set {' or '.join(can)} to On to use one)")


def gpu_layers(hw: Hardware | None) -> Applies:
    if hw is None:
        return Applies(False)
    if hw.apple_silicon or hw.gpu_branch()[0]:
        return Applies(True)
    return Applies(False, f"every layer runs on the CPU: {hw.gpu_branch()[1]}")


def draft_length(spec: SpeculativeDecision | None, available: dict[str, Availability]) -> DraftLength:
    if spec is None:
        return DraftLength(False, "")
    if spec.source is SpecSource.USER:
        return DraftLength(False, "your extra arguments choose the speculative types (and their lengths)")
    drafting = [BY_ID[m] for m in spec.methods if BY_ID[m].kind == "model"]
    if drafting:
        m = drafting[0]
        if spec.draft_n_max is None:
            return DraftLength(True, f"{m.label} proposes as many tokens as its head was trained for")
        return DraftLength(True, f"{m.label} proposes {spec.draft_n_max} tokens a step", spec.draft_n_max)
    if "ngram-mod" in spec.methods:
        return DraftLength(False, "ngram-mod sets its own length (n-min to n-max, in Advanced); this one is for "
                                  "MTP, a head or a draft model")
    ngram = [m for m in spec.methods if BY_ID[m].kind == "ngram"]
    if ngram:
        return DraftLength(False, f"{combo_label(ngram)} drafts as much as its own rule finds; this length is for "
                                  "MTP, a head or a draft model")
    if any(a.ok for mid, a in available.items() if mid in BY_ID and BY_ID[mid].kind == "model"):
        return DraftLength(False, "applies when MTP, a head or a draft model runs; none does now")
    return DraftLength(False, "no MTP, head or draft model can run for this model here")


def launch_controls(model: ModelInfo | None, spec: SpeculativeDecision | None, settings: ModelSettings,
                    available: dict[str, Availability], hw: Hardware | None) -> LaunchControls:
    knobs = {m.id: ngram_knobs(spec, settings, available, m.id, said_above=m.advanced)
             for m in METHODS if m.kind == "ngram" and m.knobs}
    return LaunchControls(setup_applies(model), knobs.get("ngram-mod", Applies(False)), gpu_layers(hw),
                          draft_length(spec, available), knobs, drafter_knobs(spec, available))
