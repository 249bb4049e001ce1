"""What the user chose for a launch, defined once: per-model choices, then the launch-wide ones.

``ModelSettings`` is what the settings file keeps for each model; ``PlanSettings`` adds what belongs
to the launch rather than the model (network, port, API key). The planner reads ``PlanSettings``;
the window and the CLI build one from a model's stored choices with :meth:`PlanSettings.of`, so no
field is ever copied by hand (a hand copy once lost ``cache_type``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.memory.launch import CACHE_TYPE_BYTES
from llama_launcher.core.speculative.methods import BY_ID, KNOBS, MODES, SpecMode
from llama_launcher.core.state.declared import Setting
from llama_launcher.core.state.declared import problems as declared_problems
from llama_launcher.core.state.safe_text import short_repr
from llama_launcher.core.state.typed_json import check_value, type_hints

CACHE_TYPES = tuple(CACHE_TYPE_BYTES)  # f16, bf16, q8_0, ... f32: the order the window lists them
AUTO_PORT = 0  # the port setting "Auto": a free port chosen just before start
MAX_CONTEXT = (1 << 32) - 1  # llama.cpp's n_ctx is a 32-bit count
CTX_TIP = "Context size in tokens. Auto picks the largest that fits the memory budget, up to the model's native context."

# Every per-model setting with a value range, declared once: the settings file's loader, the CLI's
# options and the window's controls all read these (the method knobs come from the method table).
MODEL_SETTINGS: dict[str, Setting] = {s.key: s for s in (
    *KNOBS.values(),
    Setting("ctx", "Context", CTX_TIP, lo=1, hi=MAX_CONTEXT, unset="Auto (largest that fits)", cli="--ctx"),
    Setting("cache_type", "KV cache type",
            "KV cache type (--cache-type-k/-v): q8_0 halves the cache's memory with little loss",
            kind=str, choices=CACHE_TYPES, unset="Default (f16)", cli="--cache-type"),
    Setting("draft_cache_type", "Draft KV cache type",
            "KV cache type of the drafter's own context (--spec-draft-type-k/-v): an MTP head's, a draft model's. "
            "llama-server keeps it at f16 whatever the model's cache type is; q8_0 halves its memory.",
            kind=str, choices=CACHE_TYPES, unset="Default (f16)", cli="--draft-cache-type"),
    Setting("threads", "Threads", "CPU threads for generation (-t)", lo=1, hi=512,
            unset="llama-server default", cli="--threads", cli_alias="-t"),
    Setting("gpu_layers", "GPU layers",
            "Layers offloaded to the GPU (-ngl); Auto lets llama-server fit them to memory", lo=0, hi=999,
            unset="Auto (--fit)", cli="--gpu-layers"),
)}


@dataclass
class ModelSettings:
    """The user's choices for one model file (stored per model)."""

    modes: dict[str, SpecMode] = field(default_factory=dict)  # method id -> its switch; a missing id is Auto
    draft_model: str | None = None  # the draft GGUF the user picked; None: pick a compatible one
    draft_n_max: int | None = None  # None: the planner's default (or the measured best)
    ngram_n_match: int = KNOBS["ngram_n_match"].default
    ngram_n_min: int = KNOBS["ngram_n_min"].default
    ngram_n_max: int = KNOBS["ngram_n_max"].default  # each knob's range: MODEL_SETTINGS
    draft_n_min: int | None = None  # None: llama-server's own default, no flag
    draft_p_min: float | None = None
    draft_sampling: str | None = None
    draft_cache_type: str | None = None
    ngram_simple_size_n: int = KNOBS["ngram_simple_size_n"].default
    ngram_simple_size_m: int = KNOBS["ngram_simple_size_m"].default
    ngram_simple_min_hits: int = KNOBS["ngram_simple_min_hits"].default
    ngram_map_k_size_n: int = KNOBS["ngram_map_k_size_n"].default
    ngram_map_k_size_m: int = KNOBS["ngram_map_k_size_m"].default
    ngram_map_k_min_hits: int = KNOBS["ngram_map_k_min_hits"].default
    ngram_map_k4v_size_n: int = KNOBS["ngram_map_k4v_size_n"].default
    ngram_map_k4v_size_m: int = KNOBS["ngram_map_k4v_size_m"].default
    ngram_map_k4v_min_hits: int = KNOBS["ngram_map_k4v_min_hits"].default
    ctx: int | None = None  # None: the largest that fits
    cache_type: str | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    extra_args: str = ""
    vision: bool = False

    def mode(self, method_id: str) -> SpecMode:
        return SpecMode(self.modes.get(method_id, SpecMode.AUTO))


@dataclass
class PlanSettings(ModelSettings):
    """A model's choices plus the launch-wide ones."""

    lan: bool = False
    api_key: str | None = None  # needed with LAN; passed through a file, never on the command line
    api_key_file: str | None = None
    port: int = 8080
    port_auto: bool = False  # the port was picked free just now (only the reason in the preview differs)

    @classmethod
    def of(cls, model: ModelSettings, **launch: Any) -> PlanSettings:
        return cls(**{f.name: getattr(model, f.name) for f in dataclasses.fields(ModelSettings)}, **launch)


# --- typed loading (settings files are user-editable and may hold anything) -------------------------

def load_fields(cls: type, data: Any, where: str) -> tuple[Any, list[str]]:
    """Build ``cls`` from a JSON object field by field: a wrong value falls back to its default.

    Returns (instance, problems); each problem is one line naming the field and what was wrong."""
    if not isinstance(data, dict):
        return cls(), [f"{where} is not an object; defaults used"]
    hints = type_hints(cls)  # once per class: a settings file may hold thousands of model entries
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        try:
            values[f.name] = check_value(f.name, hints[f.name], data[f.name])
        except ValueError as exc:
            problems.append(f"{where}: {exc} (got {short_repr(data[f.name])}); the default is used")
    obj = cls(**values)
    problems += _check_ranges(obj, where)
    return obj, problems


def _check_ranges(obj: Any, where: str) -> list[str]:
    """Values with the right type but outside what the launcher accepts fall back too."""
    problems = []
    if isinstance(obj, ModelSettings):
        bad = {k: v for k, v in obj.modes.items() if k not in BY_ID or v not in MODES}
        if bad:
            problems.append(f"{where}: unknown speculative modes {sorted(bad)}; Auto is used for them")
            obj.modes = {k: v for k, v in obj.modes.items() if k not in bad}
        problems += check_model_settings(obj, where)
    return problems


def check_model_settings(ms: ModelSettings, where: str = "") -> list[str]:
    """The one validator of per-model settings (the file's loader, the CLI, the window): each value
    outside its declared range is set back to its default, and said; so is n-min above n-max."""
    problems = declared_problems(ms, MODEL_SETTINGS.values(), where)
    if ms.ngram_n_min > ms.ngram_n_max:
        why = f"ngram-mod n-min ({ms.ngram_n_min}) must not exceed n-max ({ms.ngram_n_max})"
        ms.ngram_n_min, ms.ngram_n_max = KNOBS["ngram_n_min"].default, KNOBS["ngram_n_max"].default
        problems.append(f"{where}: {why}; the defaults are used" if where else why)
    if ms.draft_n_min is not None and ms.draft_n_max is not None and ms.draft_n_min > ms.draft_n_max:
        why = f"the draft minimum ({ms.draft_n_min}) must not exceed the draft length ({ms.draft_n_max})"
        ms.draft_n_min = None
        problems.append(f"{where}: {why}; llama-server's default is used" if where else why)
    return problems
