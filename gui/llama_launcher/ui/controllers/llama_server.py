"""The llama-server in use and the ways to get one: discovery, probing, llama.cpp's releases, the
installed builds, and a source build, each job cancellable.

Discovery only looks at files; probing (``--help``, ``--version``, ``--list-devices``) and hardware
detection run in the probe job. A binary the user picks replaces the one in use only once it
proves to be a llama-server. The release list is read once per session (again after a failure);
a download or a build becomes the build in use when it finishes. Listeners read the state from
the properties after each signal (signals carry no ``None``: PySide6 has mishandled it before).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from llama_launcher.core.host import gpus
from llama_launcher.core.host import hardware as host_hardware
from llama_launcher.core.host.hardware import Hardware, cpu_name
from llama_launcher.core.llama_server import installed, provisioning
from llama_launcher.core.llama_server.build_backend import choose_build_backend, find_build_tools
from llama_launcher.core.llama_server.devices import detect_with_binary
from llama_launcher.core.llama_server.discovery import Candidate, candidates, choose_build, find_server
from llama_launcher.core.llama_server.download import install
from llama_launcher.core.llama_server.fetch import RELEASES_URL_ENV, fetch_releases, releases_url
from llama_launcher.core.llama_server.installed import InstalledBuild
from llama_launcher.core.llama_server.offers import BuildOffer, build_offer, is_offline, release_status
from llama_launcher.core.llama_server.probe import Capabilities, ProbeError, probe
from llama_launcher.core.llama_server.releases import DownloadChoice, Platform, choose_newest
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.ui.controllers.settings import SettingsController
from llama_launcher.ui.jobs import JobContext, JobRunner

CANCELLED = {"download": "download cancelled; nothing was installed",
             "build": "build cancelled; what was compiled so far is kept, and building again resumes it"}


@dataclass(frozen=True)
class ProbeResult:
    caps: Capabilities | None
    hw: Hardware
    error: str = ""


class LlamaServerController(QObject):
    binary_changed = Signal()  # binary, detected_other
    probed = Signal()  # caps, hw, probe_error
    refused = Signal(str, str)  # a chosen path that is not a usable llama-server, and why
    release_changed = Signal()  # release, release_status
    builds_changed = Signal()  # builds
    progress = Signal(str, float)  # a download's or build's line, fraction (-1: unknown)
    busy_changed = Signal()  # busy
    job_failed = Signal(str, str)  # "download" or "build", the one line

    def __init__(self, settings: SettingsController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.binary: Candidate | None = None
        self.detected_other: str | None = None  # the one discovery would find, when a setting overrides it
        self.caps: Capabilities | None = None
        self.hw: Hardware | None = None
        self.probe_error = ""
        self.release: DownloadChoice | None = None
        self.release_status = "checking llama.cpp's releases…"
        self.builds: list[InstalledBuild] = []
        self.others: list[Candidate] = []  # other llama-servers found on this computer
        self.busy = ""  # "download", "build" or ""
        self.interrupted = provisioning.interrupted_build()
        self._probe = JobRunner("probe-worker", "probing llama-server", self)
        self._release = JobRunner("release-worker", "the llama.cpp download", self)
        self._build = JobRunner("build-worker", "the llama-server build", self)
        self._probe_run = 0
        self._checked = False
        for runner, kind in ((self._release, "download"), (self._build, "build")):
            runner.progress.connect(self._relay_progress)
            runner.cancelled.connect(lambda _run, kind=kind: self._job_ended(kind, CANCELLED[kind]))

    # --- the binary in use --------------------------------------------------------------------
    def discover(self) -> None:
        """Find the llama-server to use (the setting first), then probe it."""
        chosen = self._settings.settings.binary
        self.binary = find_server(chosen, "setting")
        detected = find_server()
        overridden = bool(chosen) and detected is not None and detected.path != chosen
        self.detected_other = detected.path if overridden and detected is not None else None
        self.caps, self.probe_error = None, ""
        self.binary_changed.emit()
        path = self.binary.path if self.binary else ""
        self._probe_run = self._probe.submit(lambda ctx: self._do_probe(path), self._probe_done,
                                             lambda why: self._probe_done_failed(why))

    @staticmethod
    def _do_probe(path: str) -> ProbeResult:
        if not path:
            return ProbeResult(None, host_hardware.detect())  # still show the hardware
        try:
            caps = probe(path)
        except ProbeError as exc:
            return ProbeResult(None, host_hardware.detect(), str(exc))
        return ProbeResult(caps, detect_with_binary(path if caps.has_list_devices else None))

    def _relay_progress(self, _run: int, p: object) -> None:
        msg, frac = p if isinstance(p, tuple) else (str(p), None)
        self.progress.emit(msg, -1.0 if frac is None else float(frac))

    def _probe_done_failed(self, why: str) -> None:
        self._probe_done(ProbeResult(None, self.hw or host_hardware.detect(), why))

    def _probe_done(self, result: object) -> None:
        if not isinstance(result, ProbeResult):
            return
        self.caps, self.hw, self.probe_error = result.caps, result.hw, result.error
        explicit = self._settings.settings.binary
        in_use = self.binary.path if self.binary else None
        self.others = [c for c in candidates(explicit, "setting") if c.path != in_use and c.source != "setting"]
        self.probed.emit()
        if not self._checked:
            self.check_releases()

    def use_binary(self, path: str) -> None:
        """Use the llama-server at ``path`` (chosen, found, downloaded or built) once it proves to be one."""
        self._probe.submit(lambda ctx: _Candidate.probe(path), self._candidate_done)

    def _candidate_done(self, c: object) -> None:
        assert isinstance(c, _Candidate)
        if c.error:
            self.refused.emit(c.path, c.error)
            return
        self._settings.settings.binary = c.path
        self._settings.changed()
        self.discover()

    def use_detected(self) -> None:
        self._settings.settings.binary = None
        self._settings.changed()
        self.discover()

    # --- releases and installed builds ----------------------------------------------------------
    def check_releases(self) -> None:
        self._checked = True
        url = releases_url()
        if url is None:
            self._release_checked(None, f"checking llama.cpp's releases is switched off ({RELEASES_URL_ENV}=off)")
            return

        def check(ctx: JobContext) -> DownloadChoice:
            return choose_newest(fetch_releases(url), Platform.current(), gpus.detect(), cpu=cpu_name())

        self._release.submit(check, lambda choice: self._release_checked(choice, ""),
                             lambda why: self._release_checked(None, release_status(why)))

    def _release_checked(self, choice: object, status: str) -> None:
        self.release = choice if isinstance(choice, DownloadChoice) else None
        self.release_status = status
        if self.release is None:
            self._checked = False  # offline at start, say: the next probe asks again
        self.release_changed.emit()

    def build_offer(self) -> BuildOffer:
        """Whether Build from source can work now, and its line (which tools, the sources, the network)."""
        return build_offer(provisioning.missing_tools(), provisioning.found_tools(), is_offline(self.release_status),
                           provisioning.sdist_archive().is_file())

    def list_builds(self) -> None:
        """List (and probe) the installed builds: asked for when the llama-server tab is shown, since
        each build is run once to say what it can do."""
        in_use = self.binary.path if self.binary else None
        self._release.submit(lambda ctx: installed.list_builds(in_use, ask_devices=True), self._builds_listed,
                             lambda why: self.progress.emit(f"the installed builds could not be listed: {why}", -1.0))

    def _builds_listed(self, builds: object) -> None:
        self.builds = list(builds) if isinstance(builds, list) else []
        self.builds_changed.emit()

    def use_build(self, name: str) -> None:
        def refused(why: str) -> None:
            self.refused.emit(name, why)
            self.list_builds()

        self._release.submit(lambda ctx: installed.use_build(name).path, lambda path: self.use_binary(str(path)),
                             refused)

    def download(self) -> None:
        choice = self.release
        if choice is None or self.busy:
            return

        def work(ctx: JobContext) -> str:
            result = install(choice, lambda msg, frac: ctx.report((msg, frac)), cancel=ctx.cancel)
            try:
                choose_build(result.path.parent.name)  # the new build is in use; the previous one stays
            except OSError as exc:
                ctx.report((f"the new build could not be recorded as the one in use: {exc}", 1.0))
            return str(result.path)

        self._start_job("download", self._release, work)

    def build(self) -> None:
        if self.busy:
            return

        def work(ctx: JobContext) -> str:
            backend = choose_build_backend(Platform.current().os, find_build_tools(), gpus.detect().nvidia)
            return str(provisioning.build_server(lambda msg, frac: ctx.report((msg, frac)), backend=backend,
                                                 cancel=ctx.cancel))

        self._start_job("build", self._build, work)

    def cancel(self) -> None:
        """Cancel the download or build at once (its processes end; nothing half-done is installed)."""
        (self._build if self.busy == "build" else self._release).cancel()

    def remove_interrupted(self) -> None:
        provisioning.remove_interrupted_build()
        self.interrupted = provisioning.interrupted_build()
        self.busy_changed.emit()

    def _start_job(self, kind: str, runner: JobRunner, work) -> None:
        self.busy = kind
        self.busy_changed.emit()
        def done(path: object) -> None:
            self._job_ended(kind, "")
            self.use_binary(str(path))

        runner.submit(work, done, lambda why: self._job_ended(kind, why))

    def _job_ended(self, kind: str, error: str) -> None:
        if self.busy != kind:
            return
        self.busy = ""
        self.interrupted = provisioning.interrupted_build()
        self.busy_changed.emit()
        if error:
            self.job_failed.emit(kind, error)

    def describe_busy(self) -> str:
        return {"download": "llama.cpp is downloading", "build": "llama-server is being built"}.get(self.busy, "")

    def shutdown(self) -> None:
        for runner in (self._build, self._release, self._probe):
            runner.shutdown()


@dataclass(frozen=True)
class _Candidate:
    path: str
    error: str = ""

    @staticmethod
    def probe(path: str) -> _Candidate:
        try:
            probe(path)
        except UserFacing as exc:
            return _Candidate(path, str(exc))
        return _Candidate(path)
