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
from llama_launcher.core.state.safe_text import short_repr
from llama_launcher.core.state.typed_json import check_value, type_hints

CACHE_TYPES = tuple(CACHE_TYPE_BYTES)  # f16, bf16, q8_0, ... f32: the order the window lists them
AUTO_PORT = 0  # the port setting "Auto": a free port chosen just before start


@dataclass
class ModelSettings:
    """The user's choices for one model file (stored per model)."""

    modes: dict[str, SpecMode] = field(default_factory=dict)  # method id -> its switch; a missing id is Auto
    draft_model: str | None = None  # the draft GGUF the user picked; None: pick a compatible one
    draft_n_max: int | None = None  # None: the planner's default (or the measured best)
    ngram_n_match: int = KNOBS["ngram_n_match"].default
    ngram_n_min: int = KNOBS["ngram_n_min"].default
    ngram_n_max: int = KNOBS["ngram_n_max"].default
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
        for key, knob in KNOBS.items():
            value = getattr(obj, key)
            if value is not None and not knob.lo <= value <= knob.hi:
                problems.append(f"{where}: {key} {value} is outside {knob.lo}..{knob.hi}; the default is used")
                setattr(obj, key, None if key == "draft_n_max" else knob.default)
        if obj.cache_type is not None and obj.cache_type not in CACHE_TYPES:
            problems.append(f"{where}: unknown KV cache type {obj.cache_type!r}; the default is used")
            obj.cache_type = None
        for key in ("ctx", "threads"):
            value = getattr(obj, key)
            if value is not None and value < 1:
                problems.append(f"{where}: {key} {value} must be at least 1; the default is used")
                setattr(obj, key, None)
    return problems
