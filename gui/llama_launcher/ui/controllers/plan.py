"""The selection and its plan: which model, with which settings, on which port, and the argv that follows.

Every change (a control, the model, the binary's probe, the network, a measurement) replans at
once: the planner is pure and fast. Its slower evidence comes from jobs: llama.cpp's memory
projection (llama-fit-params, run once the controls have been still for a moment) and what a
finished launch taught about memory. The network side is here too, because it is part of every
plan: the port (Auto or fixed), LAN access and its key, the addresses other devices use.

The GUI thread reads a few small, bounded state files when the model or binary changes (the
tuning result and past launches of this model); it never runs a process or asks the network.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, QTimer, Signal

from llama_launcher.core.host import network
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory import evidence as memory_evidence
from llama_launcher.core.memory.estimate import MemoryEvidence
from llama_launcher.core.models.catalog import CatalogResult
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.fallback import Fallback, without
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.plan.planner import Plan, plan_launch
from llama_launcher.core.plan.speculative import Availability, availability
from llama_launcher.core.plan.templates import base_model_note
from llama_launcher.core.settings.launch import AUTO_PORT, ModelSettings, PlanSettings, check_model_settings
from llama_launcher.core.speculative import fallback_store
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import METHODS
from llama_launcher.core.speculative.pairing import DraftOption, auto_draft, draft_options
from llama_launcher.core.state import api_key_store
from llama_launcher.core.state.api_key_store import ApiKey, ApiKeyError
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.ui.controllers.llama_server import LlamaServerController
from llama_launcher.ui.controllers.settings import SettingsController
from llama_launcher.ui.jobs import JobContext, JobRunner

PROJECTION_DELAY_MS = 600


class PlanController(QObject):
    model_changed = Signal()  # model, drafts, auto_pick, model_settings
    planned = Signal()  # plan, plan_error, available, note
    tuned_changed = Signal()  # tuned
    network_changed = Signal()  # port_setting, auto (AutoPort: the port and whether it moved), lan, api_key, lan_urls
    learned = Signal(str)  # what a finished launch taught, in words
    failed = Signal(str)  # a key that cannot be made, a projection that broke: one line

    def __init__(self, settings: SettingsController, llama: LlamaServerController,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._llama = llama
        self.catalog: CatalogResult | None = None
        self.model: ModelInfo | None = None
        self.drafts: list[DraftOption] = []
        self.auto_pick: DraftOption | None = None
        self.model_settings = ModelSettings()
        self.tuned: TunedChoice | None = None
        self.avoid: dict[str, str] = {}  # what stopped this model from loading with this binary: Auto leaves it off
        self.evidence: MemoryEvidence | None = None
        self.plan: Plan | None = None
        self.plan_error = ""
        self.available: dict[str, Availability] = {}
        self.note = ""  # the base-model line, '' for a chat model
        # Auto: the port it used last time while that is free (a client's copied address keeps working)
        self.auto = network.auto_port(settings.settings.auto_port or None)
        self._keep_auto_port()
        self.api_key: ApiKey | None = None
        self.lan_urls: list[str] = []
        self._projection_key: object = None
        self._memory = JobRunner("memory-worker", "llama.cpp's memory projection", self)
        self._projection_timer = QTimer(self)  # llama-fit-params runs once the controls have been still a moment
        self._projection_timer.setSingleShot(True)
        self._projection_timer.setInterval(PROJECTION_DELAY_MS)
        self._projection_timer.timeout.connect(self._ask_projection)
        llama.binary_changed.connect(self._binary_changed)
        llama.probed.connect(self._probed)

    def start(self) -> None:
        """Once the window listens: the LAN key (when LAN is on) and the addresses, said like any change."""
        if self.lan:
            self._load_key()  # a key that cannot be read: the banner says so, and the plan says LAN needs one
        self._network_replan()

    # --- inputs -----------------------------------------------------------------------------------
    @property
    def caps(self) -> Capabilities | None:
        return self._llama.caps

    @property
    def lan(self) -> bool:
        return self._settings.settings.lan

    @property
    def port_setting(self) -> int:
        return self._settings.settings.port

    @property
    def auto_port(self) -> int:
        return self.auto.port

    def _keep_auto_port(self) -> None:
        if self._settings.settings.auto_port != self.auto.port:
            self._settings.settings.auto_port = self.auto.port
            self._settings.changed()

    @property
    def port(self) -> int:
        """The port the next launch uses (and the preview shows)."""
        return self.port_setting if self.port_setting != AUTO_PORT else self.auto_port

    def set_catalog(self, result: CatalogResult) -> None:
        self.catalog = result

    def select(self, model: ModelInfo | None) -> None:
        self.model = model
        ms = ModelSettings()
        if model is not None:
            self._settings.settings.last_model = model.path
            self._settings.changed()
            ms = self._settings.settings.model(model.path)
        self.model_settings = ms
        others = self.catalog.drafters() if self.catalog else []  # draft models and heads (an mtp- file, ...)
        self.drafts = draft_options(model, others) if model is not None and not model.error else []
        self.auto_pick = auto_draft(model, self.drafts) if model is not None else None
        self.model_changed.emit()
        self._load_tuned()
        self.replan()

    def set_model_settings(self, ms: ModelSettings) -> None:
        """The panel's controls changed: keep them for this model and replan."""
        self.model_settings = ms
        if self.model is not None and not self.model.error and self._settings.settings.model(self.model.path) != ms:
            self._settings.settings.set_model(self.model.path, ms)
            self._settings.changed()
        self.replan()

    def _binary_changed(self) -> None:
        self.plan, self.plan_error = None, ""
        self.planned.emit()

    def _probed(self) -> None:
        self._load_tuned()
        self.replan()

    # --- network ----------------------------------------------------------------------------------
    def set_port(self, port: int) -> None:
        if port != self.port_setting:
            self._settings.settings.port = port
            self._settings.changed()
        self._network_replan()

    def use_free_port(self) -> None:
        """The way out of a taken port: Auto takes another; a fixed port moves to its next free neighbour."""
        if self.port_setting == AUTO_PORT:  # the next free neighbour, and the move is said
            self.auto = network.AutoPort(network.next_free_port(self.auto.port), moved_from=self.auto.port)
            self._keep_auto_port()
        else:
            self._settings.settings.port = network.next_free_port(self.port_setting)
            self._settings.changed()
        self._network_replan()

    def set_lan(self, on: bool) -> None:
        if on and self.api_key is None and not self._load_key():
            on = False  # no key, no LAN: the reason is in the banner
        self._settings.settings.lan = on
        self._settings.changed()
        self._network_replan()

    def regenerate_key(self) -> None:
        try:
            self.api_key = api_key_store.regenerate()
        except ApiKeyError as exc:
            self.failed.emit(str(exc))
            return
        self._network_replan()

    def _load_key(self) -> bool:
        try:
            self.api_key = api_key_store.load_or_create()
        except ApiKeyError as exc:
            self.api_key = None
            self.failed.emit(str(exc))
            return False
        return True

    def _network_replan(self) -> None:
        self.lan_urls = network.lan_urls(self.port) if self.lan else []  # once per network change, not per replan
        self.network_changed.emit()
        self.replan()

    # --- planning ---------------------------------------------------------------------------------
    def plan_settings(self, ms: ModelSettings | None = None) -> PlanSettings:
        key = self.api_key if self.lan else None
        return PlanSettings.of(ms if ms is not None else self.model_settings, lan=self.lan, port=self.port,
                               port_auto=self.port_setting == AUTO_PORT, api_key=key.key if key else None,
                               api_key_file=str(key.file) if key and key.file else None)

    def replan(self) -> None:
        self.plan, self.plan_error = None, ""
        m, caps, hw, binary = self.model, self._llama.caps, self._llama.hw, self._llama.binary
        ms = dataclasses.replace(self.model_settings)
        problems = check_model_settings(ms)  # the one validator; the planner trusts what passes
        if m is not None and not m.error and caps is not None and hw is not None and binary is not None:
            if problems:
                self.plan_error = problems[0]
            else:
                try:
                    self.plan = plan_launch(binary.path, m, hw, caps, self.plan_settings(ms), self.tuned,
                                            self.drafts, memory_evidence=self.evidence, avoid=self.avoid)
                except PlanError as exc:
                    self.plan_error = str(exc)
            self.available = self.plan.speculative.available if self.plan is not None else \
                {mt.id: availability(mt, m, caps, self.drafts, ms) for mt in METHODS}
        else:
            self.available = {}
        self.note = base_model_note(m, self.plan.flags if self.plan is not None else None, caps)
        self.planned.emit()
        if self.plan is not None and self.plan.memory is not None and self._projection_wanted() != self._projection_key:
            self._projection_timer.start()

    # --- what was measured and learned --------------------------------------------------------------
    def _load_tuned(self) -> None:
        """The stored tuning result and past launches of this model, binary and machine (small files)."""
        build = self.caps.build_number if self.caps is not None else None
        m = self.model
        usable = m is not None and not m.error and self.caps is not None
        self.tuned = tuning_store.lookup(m.path, build) if usable and m is not None else None
        binary = self._llama.binary
        self.avoid = fallback_store.avoided(m.path, binary.path) if usable and m is not None and binary else {}
        self.evidence = memory_evidence.gather(m, build) if usable and m is not None else None
        self._projection_key = None
        self.tuned_changed.emit()

    def reload_tuned(self) -> None:
        """After a tune (its result is what Auto uses now) or a fallback (what Auto leaves off now)."""
        self._load_tuned()
        self.replan()

    def retry_plan(self, model: ModelInfo, fallback: Fallback) -> Plan | None:
        """The plan of a fallback's one retry: this model's settings with the launcher's speculation off (the
        stored settings stay as they are). None when the selection moved on or it cannot be planned."""
        caps, hw, binary = self._llama.caps, self._llama.hw, self._llama.binary
        if self.model is None or self.model.path != model.path or caps is None or hw is None or binary is None:
            return None
        try:
            return plan_launch(binary.path, model, hw, caps, without(self.plan_settings(), fallback), self.tuned,
                               self.drafts, memory_evidence=self.evidence, avoid=self.avoid)
        except PlanError:
            return None

    def _projection_wanted(self) -> object:
        mem = self.plan.memory if self.plan is not None else None
        binary = self._llama.binary
        if mem is None or self.model is None or binary is None:
            return None
        return (binary.path, self.model.path, mem.launch.key(), mem.context)

    def _ask_projection(self) -> None:
        key = self._projection_wanted()
        plan, binary, model = self.plan, self._llama.binary, self.model
        if key is None or key == self._projection_key or plan is None or plan.memory is None or binary is None \
                or model is None:
            return
        self._projection_key = key
        evidence, launch, context = self.evidence or MemoryEvidence(), plan.memory.launch, plan.memory.context

        def project(ctx: JobContext) -> tuple[object, MemoryEvidence]:
            return key, memory_evidence.add_projection(evidence, binary.path, model, launch, context)

        self._memory.submit(project, self._projected, self.failed.emit)

    def _projected(self, result: object) -> None:
        assert isinstance(result, tuple)
        key, evidence = result
        if key != self._projection_wanted():
            return  # the model or the settings changed meanwhile: a newer request is on its way
        if self.evidence is not None:  # a launch may have been learned meanwhile: keep the newest
            evidence = dataclasses.replace(evidence, measurements=self.evidence.measurements)
        self.evidence = evidence
        self.replan()

    def learn(self, model: ModelInfo, build: int | None, plan: Plan, log_path: str) -> None:
        """A launch ended: what the server said about its memory (in this run's log) teaches the next plan."""
        if plan.memory is None:
            return
        estimate = plan.memory

        def learn(ctx: JobContext) -> str:
            got = memory_evidence.learn_after_launch(model, build, estimate, log_path or None)
            return got.describe() if got is not None else ""

        def done(what: object) -> None:
            if what:
                self.learned.emit(str(what))
            self._load_tuned()
            self.replan()

        self._memory.submit(learn, done, lambda why: self.learned.emit(
            f"the server's memory figures could not be read ({why})"))

    def shutdown(self) -> None:
        self._memory.shutdown()
