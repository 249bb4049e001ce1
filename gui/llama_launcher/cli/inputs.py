"""The inputs every planning command shares: the binary, the model, the hardware, the settings, the drafters."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from llama_launcher.cli.output import UsageError
from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.devices import ask_binary_devices, detect_with_binary
from llama_launcher.core.llama_server.discovery import find_server
from llama_launcher.core.llama_server.probe import Capabilities, ProbeError, probe
from llama_launcher.core.models.catalog import HeaderCache, group_models, read_files, scan, split_heads
from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.gguf_header import file_kind
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.models.sidecar import refusal
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.plan.with_evidence import plan_with_evidence
from llama_launcher.core.settings.launch import (
    MODEL_SETTINGS,
    ModelSettings,
    PlanSettings,
    check_model_settings,
)
from llama_launcher.core.speculative import fallback_store
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import METHODS, SpecMode
from llama_launcher.core.speculative.pairing import DraftOption, draft_options
from llama_launcher.core.state.api_key_store import ApiKeyError, load_or_create
from llama_launcher.core.tuning import store as tuning_store


def resolve_binary(explicit: str | None) -> str:
    cand = find_server(explicit)
    if cand is None:
        raise UsageError("no llama-server found: run 'llama-launcher get-server', or install llama.cpp "
                         "('brew install llama.cpp' on macOS, 'winget install llama.cpp' on Windows)")
    return cand.path


def probe_binary(path: str):
    try:
        return probe(path)
    except ProbeError as exc:
        raise UsageError(str(exc)) from exc


def load_model(path_text: str):
    path = Path(os.path.abspath(Path(path_text).expanduser()))
    if not path.exists():
        raise UsageError(f"model file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a .gguf file (use 'models {path}' to list them)")
    if not path.is_file():  # a FIFO would block the header reader forever

        raise UsageError(f"{path} is not a model file: it is {file_kind(path.stat().st_mode)}")
    # the folder's other files: split parts and projectors belong to the model
    siblings = sorted({*(p for p in path.parent.glob("*.gguf") if p.is_file()), path})
    infos = read_files(siblings, HeaderCache())
    models, projectors = group_models(infos)
    models, heads = split_heads(models)
    resolved = os.path.normcase(os.path.abspath(path))
    for m in models + projectors + heads:
        parts = [os.path.normcase(os.path.abspath(p)) for p in (m.split_parts or [m.path])]
        if resolved in parts:
            if m.is_projector:
                raise UsageError(f"{path.name} is a vision projector (mmproj), not a model")
            if m.error:
                raise UsageError(f"{path.name}: {explain_text(m.error)}")
            if m in heads:
                raise UsageError(refusal(m, [t for t in models if m.path in t.heads]))
            return m
    raise UsageError(f"{path.name} could not be read as a model")


def load_hardware(file: str | None, binary: str | None):
    if file:
        try:
            return ask_binary_devices(Hardware.load(file), binary)  # the binary's own device list wins
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return detect_with_binary(binary)


def settings_from_args(args: argparse.Namespace):
    modes = {m.id: getattr(args, "mode_" + m.id.replace("-", "_")) for m in METHODS if m.cli_flag}
    draft = args.draft_model
    if draft == "off":
        modes["draft"] = "off"
    elif draft != "auto":
        modes["draft"] = "on"
    ms = ModelSettings(modes={k: SpecMode(v) for k, v in modes.items() if v != "auto"},
                       draft_model=None if draft in ("auto", "off") else str(Path(draft).expanduser().resolve()),
                       extra_args=args.extra_args, vision=args.vision,
                       **{key: getattr(args, key) for key in MODEL_SETTINGS})
    problems = check_model_settings(ms)
    if problems:
        raise UsageError(problems[0])
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535 (got {args.port})")
    s = PlanSettings.of(ms, lan=args.lan, port=args.port or free_port(), port_auto=args.port is None)
    if s.lan:
        try:
            key = load_or_create()  # generated once, kept owner-only in the config folder
        except ApiKeyError as exc:
            raise UsageError(str(exc)) from exc
        s.api_key, s.api_key_file = key.key, (str(key.file) if key.file else None)
    return s


def draft_candidates(model, explicit: str | None):
    """The catalog's drafters for ``model``: the model's own folder and the usual places (and ``explicit``)."""
    folders = [Path(model.folder)] + ([Path(explicit).parent] if explicit else [])
    result = scan(folders, include_defaults=True)
    return draft_options(model, result.drafters())


def resolve_inputs(args: argparse.Namespace):
    """(binary, capabilities, model, hardware, plan settings, drafters) from the shared plan options."""
    binary = resolve_binary(args.binary)
    caps = probe_binary(binary)
    model = load_model(args.model)
    hw = load_hardware(args.hardware, binary)
    settings = settings_from_args(args)
    if settings.draft_model and not Path(settings.draft_model).is_file():
        raise UsageError(f"draft model not found: {settings.draft_model}")
    drafts = draft_candidates(model, settings.draft_model) if args.draft_model != "off" else []
    if settings.draft_model:
        pick = next((d for d in drafts if d.path == settings.draft_model), None)
        if pick is None or not pick.ok:
            why = pick.reason if pick is not None else "it is not a model"
            raise UsageError(f"{Path(settings.draft_model).name} cannot draft for {model.name}: {why}")
    return binary, caps, model, hw, settings, drafts


@dataclass
class Inputs:
    """What a plan is made from; ``serve`` plans again from it when it falls back."""

    binary: str
    caps: Capabilities
    model: ModelInfo
    hw: Hardware
    settings: PlanSettings
    drafts: list[DraftOption]
    tuned: TunedChoice | None


def replan(inputs: Inputs, settings: PlanSettings, with_projection: bool = False) -> Plan:
    """Plan ``settings``; Auto leaves off what stopped this model from loading with this binary."""
    try:
        return plan_with_evidence(inputs.binary, inputs.model, inputs.hw, inputs.caps, settings, inputs.tuned,
                                  with_projection, inputs.drafts, fallback_store.avoided(inputs.model.path,
                                                                                         inputs.binary))
    except PlanError as exc:
        raise UsageError(str(exc)) from exc


def plan_inputs(args: argparse.Namespace, with_projection: bool = False) -> tuple[Inputs, Plan]:
    """The inputs and their plan; the memory fit uses this model's past launches and, ``with_projection``,
    llama.cpp's projection from llama-fit-params."""
    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    inputs = Inputs(binary, caps, model, hw, settings, drafts, tuning_store.lookup(model.path, caps.build_number))
    return inputs, replan(inputs, settings, with_projection)


def make_plan_with_inputs(args: argparse.Namespace, with_projection: bool = False):
    """(binary, capabilities, model, plan settings, plan): ``plan_inputs`` for the commands that plan once."""
    inputs, plan = plan_inputs(args, with_projection)
    return inputs.binary, inputs.caps, inputs.model, inputs.settings, plan
