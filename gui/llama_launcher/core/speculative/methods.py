"""The speculative-decoding methods the launcher offers, as one table.

llama.cpp keeps adding methods (b11434 lists draft-simple, draft-eagle3, draft-mtp, draft-dflash,
draft-dspark and five ngram types) and renaming their flags between builds. Everything the
launcher knows about a method lives in :data:`METHODS`: its label, the ``--spec-type`` tokens it
may have in a binary, what it needs from the model, its knobs in each flag dialect, and what
``tune`` tries. The planner, the settings, the window, the CLI, bench/tune and the tuning store all
read this table; adding a method means a row here, its decision rule in the planner, and tests.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from llama_launcher.core.state.declared import Setting

Need = Literal["nothing", "mtp-layers", "draft-model", "head"]


# The methods' knobs, each an attribute of ``ModelSettings`` declared once (core/state/declared.py).
# ``draft_n_max`` is unset by default: the planner's length (2 on a GPU, 3 elsewhere) or the measured best.
DRAFT_N_DEFAULT = 3  # llama.cpp's own --spec-draft-n-max default
KNOBS: dict[str, Setting] = {k.key: k for k in (
    Setting("draft_n_max", "Draft length",
            "How many tokens a draft model, an MTP head or a speculator head proposes per step. Longer drafts pay "
            "off only when most of them are accepted; 2 is best on GPUs in published tests, 3 is llama.cpp's default.",
            lo=1, hi=16, unset="the planner's length", cli="--draft-n-max"),
    Setting("ngram_n_match", "ngram-mod n-match", "ngram-mod lookup length (llama.cpp's default 24)",
            default=24, lo=1, hi=1024, cli="--ngram-n-match"),
    Setting("ngram_n_min", "ngram-mod n-min", "fewest tokens ngram-mod drafts (llama.cpp's default 48)",
            default=48, lo=0, hi=1024, cli="--ngram-n-min"),
    Setting("ngram_n_max", "ngram-mod n-max", "most tokens ngram-mod drafts (llama.cpp's default 64)",
            default=64, lo=1, hi=1024, cli="--ngram-n-max"),
    # the model-based drafters' other knobs (--spec-draft-*): unset means llama-server's own default
    Setting("draft_n_min", "Draft minimum", "The fewest tokens a drafter proposes per step "
            "(--spec-draft-n-min; llama.cpp's default 0): a step whose draft is shorter drafts nothing.",
            lo=0, hi=16, unset="llama-server's default (0)", cli="--draft-n-min"),
    Setting("draft_p_min", "Draft confidence", "The least probability a drafted token must have to be kept "
            "(--spec-draft-p-min, 0..1; llama.cpp's default 0.00): higher drafts less but wastes fewer steps.",
            kind=float, lo=0.0, hi=1.0, unset="llama-server's default (0.00)", cli="--draft-p-min"),
    Setting("draft_sampling", "Draft sampling", "How drafts are picked (--spec-draft-sampling): greedy takes the "
            "drafter's best token; probabilistic samples it and the model verifies by rejection sampling.",
            kind=str, choices=("greedy", "probabilistic"), unset="llama-server's default (greedy)",
            cli="--draft-sampling"),
    # the newer ngram types (llama.cpp's defaults: size-n 12, size-m 48, min-hits 1; each 1..1024)
    *(Setting(f"{key}_{part}", f"{name} {word}", f"{name}: {tip} (llama.cpp's default {default})",
              default=default, lo=1, hi=1024, cli=f"--{name}-{word}")
      for key, name in (("ngram_simple", "ngram-simple"), ("ngram_map_k", "ngram-map-k"),
                        ("ngram_map_k4v", "ngram-map-k4v"))
      for part, word, default, tip in (("size_n", "size-n", 12, "length of the lookup n-gram"),
                                       ("size_m", "size-m", 48, "length of the drafted m-gram"),
                                       ("min_hits", "min-hits", 1, "how often an n-gram must have been seen"))),
)}
# Knobs of every model-based drafter whose flags a binary may have or not, one by one (b11434 has all):
# knob -> the flags it sets. ``draft_cache_type`` (the draft's KV cache type) is declared with the other
# cache type in core/settings/launch.py, which owns the list of KV cache types.
DRAFT_KNOB_FLAGS: dict[str, tuple[str, ...]] = {
    "draft_n_min": ("--spec-draft-n-min",),
    "draft_p_min": ("--spec-draft-p-min",),
    "draft_cache_type": ("--spec-draft-type-k", "--spec-draft-type-v"),
    "draft_sampling": ("--spec-draft-sampling",),
}


@dataclass(frozen=True)
class Dialect:
    """One generation of a method's flag names; roles are knob keys plus ``model`` / ``gpu_layers``."""

    name: str
    flags: Mapping[str, str]


@dataclass(frozen=True)
class Method:
    id: str
    label: str
    tokens: tuple[str, ...]  # --spec-type values, preferred first (forks named MTP "mtp")
    needs: Need
    kind: Literal["ngram", "model"]  # llama.cpp tries ngram types before model types each step
    tip: str
    knobs: tuple[str, ...] = ()
    dialects: tuple[Dialect, ...] = ()
    knobs_required: bool = False  # without its knob flags the method is not offered
    tune_lengths: tuple[int, ...] = ()  # draft lengths tune tries
    cli_flag: str = ""  # the CLI's mode option ("--mtp"); empty: no Auto/On/Off control of its own
    auto_rule: bool = True  # the decision table may engage it on Auto; False: only a measurement does
    advanced: bool = False  # the window keeps its controls in the Advanced section


_DRAFT_N = Dialect("current", {"draft_n_max": "--spec-draft-n-max"})
_DRAFT_N_OLD = Dialect("legacy", {"draft_n_max": "--draft-max"})
_DRAFT_FILE = (
    Dialect("current", {"model": "--spec-draft-model", "gpu_layers": "--spec-draft-ngl", "draft_n_max": "--spec-draft-n-max"}),
    Dialect("legacy", {"model": "--model-draft", "gpu_layers": "--gpu-layers-draft", "draft_n_max": "--draft-max"}),
    Dialect("legacy", {"model": "--model-draft", "draft_n_max": "--draft-max"}),  # builds without GPU offload flags
)

METHODS: tuple[Method, ...] = (
    Method("mtp", "MTP", ("draft-mtp", "mtp"), "mtp-layers", "model",
           "MTP (multi-token prediction): the model's own extra head drafts the next tokens, and the model checks "
           "them in one step. Faster on bigger models; slower on small ones (below 3B parameters) and on some Macs.",
           knobs=("draft_n_max",), dialects=(_DRAFT_N, _DRAFT_N_OLD), tune_lengths=(1, 2, 3, 4, 6), cli_flag="--mtp"),
    Method("eagle3", "EAGLE3 head", ("draft-eagle3",), "head", "model",
           "EAGLE3: a small speculator head trained for this model drafts from the model's own hidden states.",
           knobs=("draft_n_max",), dialects=_DRAFT_FILE, tune_lengths=(2, 4, 6), cli_flag="--eagle3"),
    Method("dflash", "DFlash head", ("draft-dflash",), "head", "model",
           "DFlash: a block-diffusion speculator head trained for this model drafts a block of tokens at once.",
           knobs=("draft_n_max",), dialects=_DRAFT_FILE, tune_lengths=(4, 8), cli_flag="--dflash"),
    Method("dspark", "DSpark head", ("draft-dspark",), "head", "model",
           "DSpark: a DFlash-style speculator with a Markov head and a confidence cut-off.",
           knobs=("draft_n_max",), dialects=_DRAFT_FILE, tune_lengths=(4, 8), cli_flag="--dspark"),
    Method("draft", "Draft model", ("draft-simple",), "draft-model", "model",
           "A draft model: a smaller model with the same tokenizer proposes tokens that the big model checks in "
           "one step (LM Studio's speculative decoding). Costs the draft's memory; pays off on big models.",
           knobs=("draft_n_max",), dialects=_DRAFT_FILE, tune_lengths=(2, 4, 8)),
    Method("ngram-mod", "ngram-mod", ("ngram-mod",), "nothing", "ngram",
           "ngram-mod: drafts tokens by finding the recent text again in the context — no extra model needed. "
           "Big wins on repetitive output (code edits, quoting), harmless elsewhere.",
           knobs=("ngram_n_match", "ngram_n_min", "ngram_n_max"),
           dialects=(Dialect("current", {"ngram_n_match": "--spec-ngram-mod-n-match",
                                         "ngram_n_min": "--spec-ngram-mod-n-min",
                                         "ngram_n_max": "--spec-ngram-mod-n-max"}),
                     Dialect("legacy", {"ngram_n_match": "--spec-ngram-size-n", "ngram_n_min": "--draft-min",
                                        "ngram_n_max": "--draft-max"})),
           knobs_required=True, cli_flag="--ngram-mod"),
    *(Method(mid, mid, (mid,), "nothing", "ngram", tip,
             knobs=tuple(f"{key}_{part}" for part in ("size_n", "size_m", "min_hits")),
             dialects=(Dialect("current", {f"{key}_{part}": f"--spec-{mid}-{word}" for part, word in
                                           (("size_n", "size-n"), ("size_m", "size-m"), ("min_hits", "min-hits"))}),),
             cli_flag=f"--{mid}", auto_rule=False, advanced=True)
      for mid, key, tip in (
          ("ngram-simple", "ngram_simple", "ngram-simple: drafts the m tokens that followed the last n tokens the "
           "previous time they appeared in the context. No extra model; Auto uses it only when Tune measured it "
           "faster than ngram-mod."),
          ("ngram-map-k", "ngram_map_k", "ngram-map-k: like ngram-simple, with a map of every n-gram seen in the "
           "context, drafting the continuation seen often enough (min-hits). Auto uses it only when measured faster."),
          ("ngram-map-k4v", "ngram_map_k4v", "ngram-map-k4v: ngram-map-k keeping up to four continuations per "
           "n-gram. Auto uses it only when measured faster."))),
    Method("ngram-cache", "ngram-cache", ("ngram-cache",), "nothing", "ngram",
           "ngram-cache: drafts from a cache of n-grams built while generating (up to 8 tokens a step). "
           "Auto uses it only when Tune measured it faster than ngram-mod.",
           cli_flag="--ngram-cache", auto_rule=False, advanced=True),
)
BY_ID: dict[str, Method] = {m.id: m for m in METHODS}
BY_TOKEN: dict[str, Method] = {t: m for m in METHODS for t in m.tokens}  # --spec-type token -> its method


class SpecMode(str, enum.Enum):
    """A method's switch: Auto (the planner decides, and says why), On, Off. A ``str``, so it is stored
    and printed as its value."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return self.value.capitalize()


MODES = tuple(SpecMode)


class SpecSource(str, enum.Enum):
    """Where the speculative setting of a plan came from (``plan --json``'s ``speculative.source``)."""

    RULES = "table"  # the decision table (docs/planner.md)
    MEASURED = "measured"  # tune's result for this model, build and machine
    USER = "user extra args"  # the user's own --spec-type
    UNAVAILABLE = "unavailable"  # the binary has no speculative decoding

    def __str__(self) -> str:
        return self.value
# Older spellings of a tuned or requested setting, still read from stored results and the CLI.
ALIASES = {"ngram": "ngram-mod", "draft-model": "draft", "draft-simple": "draft"}


def parse_combo(text: str) -> tuple[str, ...]:
    """``off``, ``mtp``, ``ngram``, ``mtp+ngram-mod``, ``draft`` -> method ids in table order.

    Raises ``ValueError`` naming the unknown part (the CLI turns it into one ``error:`` line)."""
    text = (text or "").strip().lower()
    if text in ("", "off", "none"):
        return ()
    ids = set()
    for part in text.replace(",", "+").split("+"):
        part = ALIASES.get(part.strip(), part.strip())
        if part not in BY_ID:
            raise ValueError(f"unknown speculative method {part!r} (known: off, {', '.join(BY_ID)})")
        ids.add(part)
    return tuple(m.id for m in METHODS if m.id in ids)


def combo_label(ids: Iterable[str], draft_n_max: int | None = None) -> str:
    """'MTP + ngram-mod n=3', 'off': one wording for previews, tune tables and stored results."""
    ids = [i for i in ids]
    if not ids:
        return "off"
    ordered = [m for m in METHODS if m.id in ids]
    label = " + ".join(m.label for m in ordered)
    if draft_n_max and any(m.kind == "model" for m in ordered):
        label += f" n={draft_n_max}"
    return label


def combo_key(ids: Iterable[str]) -> str:
    """The stored spelling of a combination: method ids in table order, '+'-joined ('off' when empty)."""
    ordered = [m.id for m in METHODS if m.id in set(ids)]
    return "+".join(ordered) or "off"


def token_for(m: Method, spec_types: Iterable[str]) -> str | None:
    """This binary's ``--spec-type`` token for the method, or None."""
    have = set(spec_types)
    return next((t for t in m.tokens if t in have), None)


def resolve_dialect(m: Method, real_options: Iterable[str]) -> Dialect | None:
    """The first dialect whose flags are all real (non-removed) options of this binary."""
    real = set(real_options)
    return next((d for d in m.dialects if all(f in real for f in d.flags.values())), None)


def flag_clash(a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> str | None:
    """A flag two methods' dialects (role -> flag) would both need for different knobs (legacy: ``--draft-max``)."""
    if a is None or b is None:
        return None
    for role, flag in a.items():
        for other_role, other_flag in b.items():
            if flag == other_flag and role != other_role:
                return flag
    return None
