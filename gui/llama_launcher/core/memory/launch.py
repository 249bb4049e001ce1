"""The launch settings that change how much memory llama-server takes, read from a planned launch.

The estimate needs to know what the server will really run with: slots, ubatch, KV cache types,
FlashAttention, the longest speculative draft (each slot reserves a logits row per drafted token)
and whether an MTP draft context exists. The planner's own choices come first; the user's extra
arguments, which come last on the command line and win there, win here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.speculative.methods import BY_ID, BY_TOKEN, DRAFT_N_DEFAULT, KNOBS

if TYPE_CHECKING:
    from llama_launcher.core.host.hardware import Hardware
    from llama_launcher.core.llama_server.probe import Capabilities

SERVER_SLOTS = 4  # llama-server's default -np auto gives 4 slots and a unified KV cache
UBATCH = 512
BATCH = 2048
# The KV cache types the launcher offers (in the order the window lists them), with bytes per element.
CACHE_TYPE_BYTES = {"f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32, "q4_1": 20 / 32,
                    "q4_0": 18 / 32, "iq4_nl": 18 / 32, "f32": 4.0}
# Backends whose FlashAttention 'auto' always resolves to on in b11434 (all ops supported).
FA_AUTO_ON = {Backend.CPU, Backend.METAL}


@dataclass(frozen=True)
class LaunchMemory:
    """The launch settings that change memory use, with llama-server's defaults."""

    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    flash_attn: str = "auto"  # "on", "off", "auto" (as passed to -fa)
    n_parallel: int = SERVER_SLOTS
    kv_unified: bool = True
    n_ubatch: int = UBATCH
    n_batch: int = BATCH
    n_draft: int = 0  # the longest speculative draft (ngram-mod n-max, MTP draft length): logits rows per slot
    mtp: bool = False
    swa_full: bool = False
    backend: Backend = Backend.CPU
    draft_cache_type_k: str = "f16"  # the drafter's own context (MTP draft, head, draft model): -ctkd/-ctvd
    draft_cache_type_v: str = "f16"

    def flash_attn_on(self) -> bool:
        """What 'auto' resolves to: on for CPU and Metal; on a discrete GPU the safe side (off) until measured."""
        if self.flash_attn in ("on", "off"):
            return self.flash_attn == "on"
        return self.backend in FA_AUTO_ON

    def key(self) -> dict[str, Any]:
        """What a measurement must share to correct this launch's estimate."""
        key = {"cache_type_k": self.cache_type_k, "cache_type_v": self.cache_type_v, "flash_attn": self.flash_attn,
               "n_parallel": self.n_parallel, "kv_unified": self.kv_unified, "n_ubatch": self.n_ubatch,
               "n_outputs": self.n_outputs(), "mtp": self.mtp, "swa_full": self.swa_full}
        if (self.draft_cache_type_k, self.draft_cache_type_v) != ("f16", "f16"):  # keys measured before stay valid
            key["draft_cache_type"] = f"{self.draft_cache_type_k}/{self.draft_cache_type_v}"
        return key

    def draft_context(self) -> LaunchMemory:
        """The settings of the drafter's own context: its KV cache type, one output per slot."""
        return replace(self, cache_type_k=self.draft_cache_type_k, cache_type_v=self.draft_cache_type_v, n_draft=0)

    def n_outputs(self) -> int:
        return min(self.n_batch, self.n_parallel * (1 + max(self.n_draft, 0)))


_INT_FLAGS = {"-np": "n_parallel", "--parallel": "n_parallel", "-ub": "n_ubatch", "--ubatch-size": "n_ubatch",
              "-b": "n_batch", "--batch-size": "n_batch"}
CACHE_K_ALIASES = ("-ctk", "--cache-type-k")
CACHE_V_ALIASES = ("-ctv", "--cache-type-v")
DRAFT_CACHE_K_ALIASES = ("-ctkd", "--spec-draft-type-k", "--cache-type-k-draft")
DRAFT_CACHE_V_ALIASES = ("-ctvd", "--spec-draft-type-v", "--cache-type-v-draft")
_STR_FLAGS = {"-fa": "flash_attn", "--flash-attn": "flash_attn", **dict.fromkeys(CACHE_K_ALIASES, "cache_type_k"),
              **dict.fromkeys(CACHE_V_ALIASES, "cache_type_v"),
              **dict.fromkeys(DRAFT_CACHE_K_ALIASES, "draft_cache_type_k"),
              **dict.fromkeys(DRAFT_CACHE_V_ALIASES, "draft_cache_type_v")}
_FA_WORDS = {"on": "on", "off": "off", "auto": "auto", "1": "on", "0": "off", "true": "on", "false": "off",
             "enabled": "on", "disabled": "off"}


def launch_memory_from_argv(argv: list[str], base: LaunchMemory) -> LaunchMemory:
    """``base`` with the memory-relevant flags of ``argv`` (the user's extra arguments) applied; last wins."""
    changes: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        flag, eq, inline = token.partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        step = 1 if eq else 2
        if flag in _INT_FLAGS and value is not None:
            try:
                n = int(value)
            except ValueError:
                n = 0
            if 0 < n <= 1 << 20:
                changes[_INT_FLAGS[flag]] = n
                if flag in ("-np", "--parallel"):
                    changes.setdefault("kv_unified", False)  # an explicit -np leaves llama-server's unified cache off
            i += step
            continue
        if flag in _STR_FLAGS and value is not None:
            key = _STR_FLAGS[flag]
            v = value.lower()
            if key == "flash_attn":
                if v in _FA_WORDS:
                    changes[key] = _FA_WORDS[v]
            elif v in CACHE_TYPE_BYTES:
                changes[key] = v
            i += step
            continue
        if token in ("--swa-full",):
            changes["swa_full"] = True
        elif token in ("-kvu", "--kv-unified"):
            changes["kv_unified"] = True
        elif token in ("-no-kvu", "--no-kv-unified"):
            changes["kv_unified"] = False
        i += 1
    return replace(base, **changes)


_SPEC_N_FLAGS = ("--spec-draft-n-max", "--spec-ngram-mod-n-max", "--draft-max", "--draft-n", "--draft")
NGRAM_MOD_N_MAX = KNOBS["ngram_n_max"].default  # llama.cpp's default ngram-mod n-max
MTP_DRAFT_N_MAX = DRAFT_N_DEFAULT  # llama.cpp's default --spec-draft-n-max


def user_spec_memory(argv: list[str], base: LaunchMemory) -> LaunchMemory:
    """Speculative flags in the user's own arguments: their draft length sets the logits rows; MTP a draft context."""
    types: list[str] = []
    n_max: list[int] = []
    for i, token in enumerate(argv):
        flag, eq, inline = token.partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if flag == "--spec-type":
            types += [t.strip().lower() for t in value.split(",")]
        elif flag in _SPEC_N_FLAGS and value.isdigit():
            n_max.append(min(int(value), 1 << 16))
        elif flag == "--spec-default":
            types.append("ngram-mod")
    if not types and not n_max:
        return base
    mtp = any(t in BY_ID["mtp"].tokens for t in types) or base.mtp
    defaults = [NGRAM_MOD_N_MAX] if any("ngram" in t for t in types) else []
    defaults += [MTP_DRAFT_N_MAX] if mtp else []
    return replace(base, mtp=mtp, n_draft=max(n_max or defaults or [base.n_draft]))


def memory_backend(gpu: bool, apple_silicon: bool, gpu_backends: list[Backend]) -> Backend:
    """The backend the server's buffers land on: the first discrete GPU's, Metal on Apple Silicon, else CPU."""
    if gpu and gpu_backends:
        return gpu_backends[0]
    return Backend.METAL if apple_silicon else Backend.CPU


_VERBOSITY_FLAGS = ("-lv", "--verbosity", "--log-verbosity")
BREAKDOWN_VERBOSITY = 4  # llama.cpp's LOG_LEVEL_TRACE: buffer sizes, the --fit projection and the exit breakdown


def breakdown_verbosity_flag(caps: Capabilities, user_flags: list[str]) -> list[str]:
    """``-lv 4`` when the binary has it and the user set no verbosity: without it the log holds no memory figures."""
    real = set(caps.real_options)
    if {"-v", "--verbose", "--log-verbose", *_VERBOSITY_FLAGS} & set(user_flags):
        return []
    flag = next((f for f in _VERBOSITY_FLAGS if f in real), None)
    return [flag, str(BREAKDOWN_VERBOSITY)] if flag else []


def memory_launch(model: ModelInfo, hw: Hardware, gpu: bool, spec_types: list[str], draft_n_max: int | None,
                  ngram_lengths: dict[str, int], cache_type: str, extra_argv: list[str],
                  draft_cache_type: str = "f16") -> LaunchMemory:
    """The memory-relevant settings of a planned launch: the planner's choices, then the user's extra arguments.

    ``ngram_lengths``: the longest draft of each engaged ngram type (method id -> tokens)."""
    backends = [d.backend for d in hw.discrete_devices()]
    mtp = any(t in BY_ID["mtp"].tokens for t in spec_types)
    # MTP, a draft model or a head: any method of the table's "model" kind
    model_drafter = any(t in BY_TOKEN and BY_TOKEN[t].kind == "model" for t in spec_types)
    drafts = [n for mid, n in ngram_lengths.items() if any(t in BY_ID[mid].tokens for t in spec_types)]
    drafts += [draft_n_max or MTP_DRAFT_N_MAX] if model_drafter else []
    base = LaunchMemory(cache_type_k=cache_type, cache_type_v=cache_type, mtp=mtp, n_draft=max(drafts, default=0),
                        backend=memory_backend(gpu, hw.apple_silicon, backends),
                        draft_cache_type_k=draft_cache_type, draft_cache_type_v=draft_cache_type)
    return user_spec_memory(extra_argv, launch_memory_from_argv(extra_argv, base))
