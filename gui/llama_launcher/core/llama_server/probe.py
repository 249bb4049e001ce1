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

from llama_launcher.core.host.process_env import child_env, no_window_flags
from llama_launcher.core.server.failure_reasons import describe_exit
from llama_launcher.core.speculative.methods import METHODS, resolve_dialect, token_for
from llama_launcher.core.state import paths
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.state_files import expect, read_json, save_json
from llama_launcher.core.state.typed_json import checked_fields, field_checks

HELP_TIMEOUT_S = 20.0
PROBE_CACHE_VERSION = 7  # 6: options that print and exit are denied; 7: the newer ngram types
REMOVED_PREFIX = "the argument has been removed"
_DESC_COLUMN = 40
_ALIAS_RE = re.compile(r"\s*(-{1,2}[A-Za-z0-9][A-Za-z0-9_.\-]*)(,)?")
_ENV_RE = re.compile(r"\(env:\s*([A-Z0-9_]+)\)")
_GAP_RE = re.compile(r"(?<=\S) {2,}(?=\S)")
# speculative type names as llama.cpp spells them, for help texts that list them in the description
_SPEC_TYPE_WORD = re.compile(r"(?<![\w-])(none|mtp|draft-[a-z0-9]+|ngram-[a-z0-9-]+|eagle3?)(?![\w-])")
_VERSION_NEW = re.compile(r"version:\s*(\S+)\s*\(build\s+(\d+),\s*commit\s+([0-9a-zA-Z]+)\)")
_VERSION_OLD = re.compile(r"version:\s*(\d+)\s*\(([0-9a-zA-Z]+)\)")


class ProbeError(UserFacing):
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
                # forks print a long placeholder and the description on one line, two or more spaces apart
                gap = _GAP_RE.search(line)
                left, first_desc = (line[: gap.start()], line[gap.end():]) if gap else (line, "")
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


def parse_spec_types(placeholder: str | None, description: str = "") -> list[str]:
    """``none,draft-mtp,ngram-mod`` (current), ``[none|ngram-mod]`` (older builds), or a bare ``TYPE``
    placeholder whose types are listed in the description (some forks)."""
    value = (placeholder or "").strip()
    if not value or (re.fullmatch(r"[A-Z_]+", value) and description):
        seen: list[str] = []
        for m in _SPEC_TYPE_WORD.finditer(description):
            if m.group(1) not in seen:
                seen.append(m.group(1))
        return seen if any(t != "none" for t in seen) else []
    first = value.split()[0]
    if "," in first or "|" in first:
        value = first  # the description followed the list after a single space
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
    spec_chains: bool = False  # --spec-type takes a comma list (several types at once)
    method_tokens: dict[str, str] = field(default_factory=dict)  # method id -> its --spec-type token here
    dialects: dict[str, dict[str, str]] = field(default_factory=dict)  # method id -> role -> flag
    dialect_names: dict[str, str] = field(default_factory=dict)  # method id -> "current" / "legacy"
    has_fit: bool = False
    has_metrics: bool = False
    has_list_devices: bool = False
    has_jinja: bool = False
    jinja_default: bool | None = None  # Jinja engine on unless --no-jinja (b11434: on)
    builtin_templates: list[str] = field(default_factory=list)
    has_api_key_file: bool = False
    real_options: list[str] = field(default_factory=list)
    removed_options: list[str] = field(default_factory=list)
    removed_hints: dict[str, str] = field(default_factory=dict)  # removed option -> what its stub says to use
    takes_value: list[str] = field(default_factory=list)  # real options with a value placeholder
    numeric_options: list[str] = field(default_factory=list)  # ... whose value must be a number
    denied: dict[str, str] = field(default_factory=dict)  # option -> why extra arguments may not use it
    lan_risky: dict[str, str] = field(default_factory=dict)  # option -> why it is refused with LAN on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capabilities:
        """Rebuild from ``to_dict`` output (the probe cache); ``ValueError`` if any field has the wrong type."""
        return cls(**checked_fields(_CAPS_CHECKS, data, "a probe result", ("path",)))

    # derived views, for tables and messages
    @property
    def mtp_token(self) -> str | None:
        return self.method_tokens.get("mtp")

    @property
    def ngram_mod_flavor(self) -> str | None:
        return self.dialect_names.get("ngram-mod")

    @property
    def draft_n_max_flag(self) -> str | None:
        return self.dialects.get("mtp", {}).get("draft_n_max") or \
            next((d["draft_n_max"] for d in self.dialects.values() if "draft_n_max" in d), None)

    def summary(self) -> str:
        parts = [f"build {self.build_number}" if self.build_number is not None else "unknown build"]
        if self.speculative:
            parts.append("spec types: " + ", ".join(t for t in self.spec_types if t != "none"))
        else:
            parts.append("no --spec-type (speculative decoding unavailable)")
        parts.append(f"MTP: {self.mtp_token or 'no'}")
        parts.append(f"ngram-mod knobs: {self.ngram_mod_flavor or 'no'}")
        return "; ".join(parts)

    def in_words(self) -> list[str]:
        """What this build can do, for a person (the window): the methods by name, not its --spec-type tokens."""
        if not self.speculative:
            lines = ["No speculative decoding (this llama-server predates --spec-type; a newer llama.cpp has it)"]
        else:
            names = [m.label for m in METHODS if m.id in self.method_tokens]
            lines = [f"Speculative decoding: {', '.join(names) or 'none of the methods the launcher knows'}"
                     + ("" if self.spec_chains else " (one at a time)")]
            if self.ngram_mod_flavor == "legacy":
                lines.append("ngram-mod under its older option names (the launcher spells them for this build)")
        extras = [what for ok, what in ((self.has_fit, "fits context and GPU layers to memory itself (--fit)"),
                                        (self.has_metrics, "reports every client's speed (--metrics)")) if ok]
        missing = [what for ok, what in ((self.has_fit, "no --fit"), (self.has_metrics, "no --metrics")) if not ok]
        if extras:
            lines.append(extras[0][0].upper() + "; ".join(extras)[1:])
        if missing:
            lines.append("This build has " + " and ".join(missing))
        return lines


# Options the launcher owns: letting extra arguments set them would make it lie about what runs.
OWNED_OPTIONS: dict[str, str] = {
    **dict.fromkeys(["-m", "--model"], "the model is chosen in the launcher"),
    **dict.fromkeys(["--host"], "use the LAN switch (it also requires an API key)"),
    **dict.fromkeys(["--port"], "set the port in the launcher (Network: Port)"),
    **dict.fromkeys(["--api-key", "--api-key-file"], "the launcher manages the API key (LAN switch)"),
    **dict.fromkeys(["--mmproj", "-mm", "--mmproj-url", "-mmu", "--no-mmproj", "--mmproj-auto", "--no-mmproj-auto"],
                    "the vision projector is chosen in the launcher"),
    **dict.fromkeys(["-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token", "-hfd", "-hfrd",
                     "--hf-repo-draft", "--spec-draft-hf", "-hfv", "-hfrv", "--hf-repo-v", "-hffv", "--hf-file-v",
                     "-mu", "--model-url", "-dr", "--docker-repo", "--offline"],
                    "the launcher runs models from your disk, not downloads"),
    **dict.fromkeys(["--models-dir", "--models-max", "--models-preset", "--models-autoload",
                     "--no-models-autoload", "--webui", "--no-webui", "--ui", "--no-ui", "--webui-config",
                     "--webui-config-file", "--path", "--api-prefix"],
                    "router and web-UI modes are not supported by the launcher"),
}
# Options that make llama-server print something and exit instead of serving (b11434's common/arg.cpp
# calls exit(0) for each); used as they are when no probe is at hand. With a probe, the help's own
# wording finds them (``_PRINTS_AND_EXITS``), in forks and later builds too.
EXITING_OPTIONS: dict[str, str] = {
    **dict.fromkeys(["-h", "--help", "--usage"], "print usage"),
    **dict.fromkeys(["--version"], "show version and build info"),
    **dict.fromkeys(["-cl", "--cache-list"], "show list of models in cache"),
    **dict.fromkeys(["--completion-bash"], "print source-able bash completion script for llama.cpp"),
    **dict.fromkeys(["--list-devices"], "print list of available devices"),
}
# Options that hand whoever holds the API key more than chat: tools (a shell), files, settings.
LAN_RISKY_OPTIONS: dict[str, str] = {
    **dict.fromkeys(["--tools", "--tools-runtime", "-ag", "--agent", "--mcp-servers-config", "--mcp-servers-json",
                     "--ui-mcp-proxy"],
                    "server-side tools and agents let whoever can reach the server run commands on this computer"),
    **dict.fromkeys(["--media-path", "--slot-save-path"],
                    "it opens a folder of this computer to whoever can reach the server"),
    **dict.fromkeys(["--props"], "it lets whoever can reach the server change its settings"),
}
_DOWNLOADS = re.compile(r"download|hugging ?face|from the internet", re.I)
_UNTRUSTED = re.compile(r"do not enable in untrusted environments|tools for ai agents", re.I)
# a switch (no value) whose help starts "print ..." or "show ...": b11434 has exactly the five above
_PRINTS_AND_EXITS = re.compile(r"^(?:print|show)\s", re.I)


def exits_instead_of_serving(what: str) -> str:
    """Why an option that prints and exits cannot be an extra argument: what it would do, the way out."""
    what = re.sub(r"\s+and\s+exit\s*$", "", what.strip().rstrip("."), flags=re.I)
    return f"it makes llama-server {what} and exit instead of starting the server (run it in a terminal for that)"


# what extra arguments may never hold, before any probe: options the launcher owns, and those that exit
FIXED_DENIED: dict[str, str] = {**OWNED_OPTIONS, **{a: exits_instead_of_serving(w) for a, w in EXITING_OPTIONS.items()}}


def _policy(options: list[HelpOption]) -> tuple[dict[str, str], dict[str, str]]:
    """(denied, lan_risky) for every alias of every option, read from this binary's own help.

    An option is owned when any alias is in OWNED_OPTIONS (so ``--spec-draft-hf`` falls with ``-hfd``),
    and denied when its help says it downloads (the preset flags also move the server to their own
    port); it is LAN-risky when any alias is a known tool/file option or its help warns about
    untrusted environments."""
    denied: dict[str, str] = dict(FIXED_DENIED)
    risky: dict[str, str] = dict(LAN_RISKY_OPTIONS)
    for opt in options:
        if opt.removed:
            continue
        reason = next((OWNED_OPTIONS[a] for a in opt.aliases if a in OWNED_OPTIONS), None)
        if reason is None and opt.placeholder is None and _PRINTS_AND_EXITS.match(opt.description):
            reason = exits_instead_of_serving(opt.description)
        if reason is None and _DOWNLOADS.search(opt.description):
            reason = "it downloads from the internet (and presets move the server to their own port); " \
                     "the launcher runs models from your disk"
        if reason is not None:
            denied.update(dict.fromkeys(opt.aliases, reason))
            continue
        risk = next((LAN_RISKY_OPTIONS[a] for a in opt.aliases if a in LAN_RISKY_OPTIONS), None)
        if risk is None and _UNTRUSTED.search(opt.description):
            risk = "llama.cpp itself says not to enable it where others can connect"
        if risk is not None:  # the negations (--no-agent, -no-ag) switch it off, which is always fine
            risky.update(dict.fromkeys((a for a in opt.aliases if not a.lstrip("-").startswith("no-")), risk))
    return denied, risky


def _numeric(opt: HelpOption) -> bool:
    """A value placeholder that only a number can fill (``-ngl N`` also takes 'auto'/'all': not numeric)."""
    return opt.placeholder in ("N", "P", "SEED", "F", "N.N") and "'" not in opt.description


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
    caps.takes_value = sorted(a for a, o in real.items() if o.placeholder)
    caps.numeric_options = sorted(a for a, o in real.items() if _numeric(o))
    for opt in options:
        if opt.removed:
            hint = opt.description.strip()[len(REMOVED_PREFIX):].lstrip(". ").strip()
            caps.removed_hints.update({a: hint for a in opt.aliases if a in caps.removed_options})
    spec = real.get("--spec-type")
    if spec is not None:
        caps.speculative = True
        caps.spec_types = parse_spec_types(spec.placeholder, spec.description)
        caps.spec_chains = "," in (spec.placeholder or "") or "comma-separated" in spec.description.lower()
    for m in METHODS:
        token = token_for(m, caps.spec_types)
        if token:
            caps.method_tokens[m.id] = token
        dialect = resolve_dialect(m, real)
        if dialect is not None:
            caps.dialects[m.id] = dict(dialect.flags)
            caps.dialect_names[m.id] = dialect.name
    caps.has_fit = "--fit" in real
    caps.has_metrics = "--metrics" in real
    caps.has_list_devices = "--list-devices" in real
    caps.has_jinja = "--jinja" in real
    if caps.has_jinja:
        m_default = re.search(r"\(default:\s*(enabled|disabled)\)", real["--jinja"].description)
        caps.jinja_default = (m_default.group(1) == "enabled") if m_default else False
    caps.has_api_key_file = "--api-key-file" in real
    tmpl = real.get("--chat-template")
    if tmpl is not None and "built-in templates:" in tmpl.description:
        listed = tmpl.description.split("built-in templates:", 1)[1]
        caps.builtin_templates = [t.strip() for t in listed.split(",") if re.fullmatch(r"[\w.\-]+", t.strip())]
    caps.denied, caps.lan_risky = _policy(options)
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
