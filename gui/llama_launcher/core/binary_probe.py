"""Ask a llama-server binary what it can do: ``--version``, ``--help`` and ``--list-devices``.

The launcher never guesses flags from a version number: llama.cpp renamed its speculative
options several times (see docs/llama-server-eras.md), and removed options stay in ``--help`` as
stubs whose description starts "the argument has been removed". The probe parses the help into
options and derives capabilities from the real ones. Results are cached by (path, size, mtime)
in memory and on disk, so a replaced binary is probed again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core import paths
from llama_launcher.core.failure_reasons import describe_exit
from llama_launcher.core.process_env import child_env, no_window_flags
from llama_launcher.core.state_files import expect, read_json, save_json
from llama_launcher.core.typed_json import checked_fields, field_checks

HELP_TIMEOUT_S = 20.0
PROBE_CACHE_VERSION = 3
REMOVED_PREFIX = "the argument has been removed"
_DESC_COLUMN = 40
_ALIAS_RE = re.compile(r"\s*(-{1,2}[A-Za-z0-9][A-Za-z0-9_.\-]*)(,)?")
_ENV_RE = re.compile(r"\(env:\s*([A-Z0-9_]+)\)")
_VERSION_NEW = re.compile(r"version:\s*(\S+)\s*\(build\s+(\d+),\s*commit\s+([0-9a-zA-Z]+)\)")
_VERSION_OLD = re.compile(r"version:\s*(\d+)\s*\(([0-9a-zA-Z]+)\)")


class ProbeError(Exception):
    """The binary could not be probed; one line for the user."""


@dataclass
class HelpOption:
    aliases: list[str]
    placeholder: str | None
    description: str
    env: str | None = None

    @property
    def removed(self) -> bool:
        return self.description.strip().lower().startswith(REMOVED_PREFIX)


def parse_help(text: str) -> list[HelpOption]:
    """Parse llama.cpp's ``--help`` layout (see the reference in docs/llama-server-eras.md)."""
    options: list[HelpOption] = []
    current: HelpOption | None = None
    desc_lines: list[str] = []

    def finish() -> None:
        nonlocal current, desc_lines
        if current is not None:
            joined = " ".join(s.strip() for s in desc_lines if s.strip())
            env = _ENV_RE.search(joined)
            if env:
                current.env = env.group(1)
                joined = _ENV_RE.sub("", joined).strip()
            current.description = joined
            options.append(current)
        current, desc_lines = None, []

    for raw in text.splitlines():
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            if current is not None and len(line) >= _DESC_COLUMN:
                continue  # a padded empty line inside a description (llama.cpp prints these)
            finish()
            continue
        if stripped.startswith("-----") and stripped.endswith("-----"):
            finish()
            continue
        if line.startswith("-"):
            finish()
            if len(line) > _DESC_COLUMN and line[_DESC_COLUMN - 3 : _DESC_COLUMN] == "   ":
                left, first_desc = line[: _DESC_COLUMN - 3], line[_DESC_COLUMN:]
            else:
                left, first_desc = line, ""
            aliases: list[str] = []
            rest = left
            while True:
                m = _ALIAS_RE.match(rest)
                if not m:
                    break
                aliases.append(m.group(1))
                rest = rest[m.end() :]
                if not m.group(2):
                    break
            if not aliases:
                continue
            placeholder = rest.strip() or None
            current = HelpOption(aliases, placeholder, "")
            desc_lines = [first_desc] if first_desc.strip() else []
            continue
        if current is not None and line.startswith(" "):
            desc_lines.append(line)
            continue
        finish()
    finish()
    return options


def parse_spec_types(placeholder: str | None) -> list[str]:
    """``none,draft-mtp,ngram-mod`` (current) or ``[none|ngram-mod]`` (older builds)."""
    if not placeholder:
        return []
    value = placeholder.strip()
    if value.startswith("[") and value.endswith("]"):
        parts = value[1:-1].split("|")
    elif "|" in value and "," not in value:
        parts = value.split("|")
    else:
        parts = value.split(",")
    return [p.strip() for p in parts if p.strip() and p.strip().upper() != "TYPE"]


def parse_version(text: str) -> tuple[int | None, str | None, str | None]:
    """(build number, commit, version line) from ``--version`` output of any era."""
    for line in text.splitlines():
        m = _VERSION_NEW.search(line)
        if m:
            return int(m.group(2)), m.group(3), line.strip()
        m = _VERSION_OLD.search(line)
        if m:
            return int(m.group(1)), m.group(2), line.strip()
    return None, None, None


@dataclass
class Capabilities:
    """What one llama-server binary supports, derived from its real (non-stub) options."""

    path: str
    build_number: int | None = None
    commit: str | None = None
    version_line: str | None = None
    speculative: bool = False
    spec_types: list[str] = field(default_factory=list)
    mtp_token: str | None = None
    ngram_mod_flavor: str | None = None  # "current", "legacy" or None
    draft_n_max_flag: str | None = None
    has_fit: bool = False
    has_metrics: bool = False
    has_list_devices: bool = False
    has_jinja: bool = False
    builtin_templates: list[str] = field(default_factory=list)
    real_options: list[str] = field(default_factory=list)
    removed_options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capabilities:
        """Rebuild from ``to_dict`` output (the probe cache); ``ValueError`` if any field has the wrong type."""
        return cls(**checked_fields(_CAPS_CHECKS, data, "a probe result", ("path",)))

    def summary(self) -> str:
        parts = [f"build {self.build_number}" if self.build_number is not None else "unknown build"]
        if self.speculative:
            parts.append("spec types: " + ", ".join(t for t in self.spec_types if t != "none"))
        else:
            parts.append("no --spec-type (speculative decoding unavailable)")
        parts.append(f"MTP: {self.mtp_token or 'no'}")
        parts.append(f"ngram-mod knobs: {self.ngram_mod_flavor or 'no'}")
        return "; ".join(parts)


def capabilities_from_help(path: str, help_text: str, version_text: str = "") -> Capabilities:
    options = parse_help(help_text)
    real: dict[str, HelpOption] = {}
    removed: list[str] = []
    for opt in options:
        for alias in opt.aliases:
            if opt.removed:
                removed.append(alias)
            else:
                real.setdefault(alias, opt)
    caps = Capabilities(path=path)
    caps.build_number, caps.commit, caps.version_line = parse_version(version_text)
    caps.real_options = sorted(real)
    caps.removed_options = sorted(set(removed) - set(real))
    spec = real.get("--spec-type")
    if spec is not None:
        caps.speculative = True
        caps.spec_types = parse_spec_types(spec.placeholder)
    if "draft-mtp" in caps.spec_types:
        caps.mtp_token = "draft-mtp"
    elif "mtp" in caps.spec_types:
        caps.mtp_token = "mtp"
    if all(f in real for f in ("--spec-ngram-mod-n-match", "--spec-ngram-mod-n-min", "--spec-ngram-mod-n-max")):
        caps.ngram_mod_flavor = "current"
    elif all(f in real for f in ("--spec-ngram-size-n", "--draft-min", "--draft-max")):
        caps.ngram_mod_flavor = "legacy"
    if "--spec-draft-n-max" in real:
        caps.draft_n_max_flag = "--spec-draft-n-max"
    elif "--draft-max" in real:
        caps.draft_n_max_flag = "--draft-max"
    caps.has_fit = "--fit" in real
    caps.has_metrics = "--metrics" in real
    caps.has_list_devices = "--list-devices" in real
    caps.has_jinja = "--jinja" in real
    tmpl = real.get("--chat-template")
    if tmpl is not None and "built-in templates:" in tmpl.description:
        listed = tmpl.description.split("built-in templates:", 1)[1]
        caps.builtin_templates = [t.strip() for t in listed.split(",") if re.fullmatch(r"[\w.\-]+", t.strip())]
    return caps


_CAPS_CHECKS = field_checks(Capabilities)


def run_binary(path: str, args: list[str], timeout: float = HELP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run the binary with a clean environment, no shell, merged output, and a timeout."""
    p = Path(path)
    if not p.exists():
        raise ProbeError(f"llama-server not found at {path}")
    if p.is_dir() or (sys.platform != "win32" and not os.access(p, os.X_OK)):
        raise ProbeError(f"{path} is not an executable file")
    try:
        return subprocess.run(  # noqa: S603 - argv list, no shell
            [str(p), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(),
            timeout=timeout,
            text=True,
            encoding="utf-8",
            errors="replace",
            creationflags=no_window_flags(),
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"{p.name} {' '.join(args)} did not answer within {timeout:.0f} s") from exc
    except OSError as exc:
        raise ProbeError(f"cannot run {path}: {exc.strerror or exc}") from exc


_memory_cache: dict[tuple[str, int, int], Capabilities] = {}


def _cache_file() -> Path:
    return paths.cache_dir() / "binary-probes.json"


def _fingerprint(path: str) -> tuple[str, int, int]:
    st = Path(path).stat()
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _probes(data: Any) -> dict[str, Any]:
    """Validate the probe cache (a wrong type anywhere sets the whole file aside)."""
    expect(data, dict, "the probe cache")
    if data.get("version") != PROBE_CACHE_VERSION:
        return {}  # written by another version of the launcher: probed again, not corrupt
    probes = expect(data.get("probes"), dict, "'probes'")
    for caps in probes.values():
        Capabilities.from_dict(caps)
    return dict(probes)


def _load_disk_cache() -> dict[str, Any]:
    return read_json(_cache_file(), "the llama-server probe cache", _probes) or {}


def _save_disk_cache(probes: dict[str, Any]) -> None:
    # a cache that cannot be written only costs a probe at the next start: said once
    save_json(_cache_file(), {"version": PROBE_CACHE_VERSION, "probes": probes}, "the llama-server probe cache")


def probe(path: str, use_cache: bool = True) -> Capabilities:
    """Probe ``path`` (cached by path, size and mtime). Raises :class:`ProbeError` with one line."""
    try:
        key = _fingerprint(path)
    except OSError as exc:
        raise ProbeError(f"llama-server not found at {path}") from exc
    disk_key = f"{key[0]}|{key[1]}|{key[2]}"
    if use_cache:
        if key in _memory_cache:
            return _memory_cache[key]
        disk = _load_disk_cache()
        if disk_key in disk:
            try:
                caps = Capabilities.from_dict(disk[disk_key])
                _memory_cache[key] = caps
                return caps
            except ValueError:
                pass
    version = run_binary(path, ["--version"])
    help_run = run_binary(path, ["--help"])
    if help_run.returncode != 0:
        last = next((ln.strip() for ln in reversed(help_run.stdout.splitlines()) if ln.strip()), "")
        raise ProbeError(
            f"{Path(path).name} --help failed ({describe_exit(help_run.returncode)})" + (f": {last}" if last else "")
        )
    caps = capabilities_from_help(path, help_run.stdout, version.stdout)
    if not caps.real_options:
        raise ProbeError(f"{path} does not look like llama-server: its --help lists no options")
    _memory_cache[key] = caps
    if use_cache:
        disk = _load_disk_cache()
        disk[disk_key] = caps.to_dict()
        _save_disk_cache(disk)
    return caps


def list_devices_text(path: str) -> str:
    """Raw ``--list-devices`` output ('' when the binary has no such option or it fails)."""
    try:
        run = run_binary(path, ["--list-devices"], timeout=30)
    except ProbeError:
        return ""
    return run.stdout if run.returncode == 0 else ""
