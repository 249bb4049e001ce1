"""Where llama-server can be: an explicit choice, PATH, the usual install places, our own cache.

A Finder-launched macOS app starts with a minimal PATH (no /opt/homebrew/bin), so the usual
places are searched explicitly rather than trusting PATH. Every candidate says where it came from.
The launcher's own cache holds one folder per build number (``bN``), built by ``get-server
--build`` or downloaded from llama.cpp's releases; a release of the same number as the launcher's
own source build goes beside it (``bN-release``). The newest build comes first, unless the user
chose one (``get-server --use bN`` or the window's "Use this build", recorded in ``in-use.json``
in the cache): that one is preferred to every llama-server found on PATH or in the usual places,
since it is the user's own choice; only an explicit path (``--binary``, a setting, ``LLAMA_SERVER``)
goes before it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from llama_launcher.core.llama_server import build_record
from llama_launcher.core.state import paths, state_files

EXE = "llama-server.exe" if sys.platform == "win32" else "llama-server"
FIT_TOOL = "llama-fit-params.exe" if sys.platform == "win32" else "llama-fit-params"  # built beside llama-server
RELEASE_SUFFIX = "-release"  # bN-release: a release download beside a source build of the same number
_BUILD_FOLDER = re.compile(r"b(\d+)(" + re.escape(RELEASE_SUFFIX) + r")?")
CHOICE_FILE = "in-use.json"  # {"folder": "b11433"}: the cached build the user chose
CHOSEN = ", chosen to be used"


@dataclass(frozen=True)
class Candidate:
    path: str
    source: str  # "setting", "--binary", "LLAMA_SERVER", "bundled", "PATH", "Homebrew", ...

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def is_executable(path: Path) -> bool:
    return path.is_file() and (sys.platform == "win32" or os.access(path, os.X_OK))


def bundled_dir() -> Path | None:
    """A llama-server shipped inside a frozen app (PyInstaller) lies beside the app's data."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        return Path(base) / "llama-server"
    return None


def well_known_places(home: Path | None = None, env: dict[str, str] | None = None) -> list[tuple[Path, str]]:
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    places: list[tuple[Path, str]] = []
    if sys.platform == "win32":
        local = Path(env.get("LOCALAPPDATA", home / "AppData" / "Local"))
        places.append((local / "Microsoft" / "WinGet" / "Links" / EXE, "winget"))
        for hit in sorted(glob.glob(str(local / "Microsoft" / "WinGet" / "Packages" / "ggml.llamacpp*" / EXE))):
            places.append((Path(hit), "winget"))
        places.append((Path(env.get("SCOOP", home / "scoop")) / "shims" / EXE, "scoop"))
        places.append((Path(env.get("ChocolateyInstall", r"C:\ProgramData\chocolatey")) / "bin" / EXE, "Chocolatey"))
    else:
        places.append((Path("/opt/homebrew/bin") / EXE, "Homebrew"))
        places.append((Path("/usr/local/bin") / EXE, "Homebrew" if sys.platform == "darwin" else "/usr/local/bin"))
        if sys.platform.startswith("linux"):
            places.append((Path("/home/linuxbrew/.linuxbrew/bin") / EXE, "Homebrew"))
    places.append((home / ".unsloth" / "llama.cpp" / "build" / "bin" / EXE, "Unsloth Studio"))
    places.append((home / ".unsloth" / "llama.cpp" / EXE, "Unsloth Studio"))
    places.append((home / "llama.cpp" / "build" / "bin" / EXE, "~/llama.cpp build"))
    places.append((home / "llama.cpp" / "build" / "bin" / "Release" / EXE, "~/llama.cpp build"))
    return places


def cached_builds() -> list[Path]:
    """Builds made or downloaded by ``get-server`` (folders ``bN`` and ``bN-release``), newest build
    number first; of one number, ``bN`` before ``bN-release``."""
    root = paths.server_cache_dir()
    found = []
    for hit in glob.glob(str(root / "b*" / EXE)):
        p = Path(hit)
        m = _BUILD_FOLDER.fullmatch(p.parent.name)
        if m is None:
            continue  # not one of ours (staging folders start with a dot)
        found.append((int(m.group(1)), m.group(2) is None, p))
    return [p for _, _, p in sorted(found, reverse=True)]


def is_build_folder(name: str) -> bool:
    return _BUILD_FOLDER.fullmatch(name) is not None


def _choice(data: object) -> str:
    folder = state_files.expect(data, dict, CHOICE_FILE).get("folder")
    if not isinstance(folder, str) or not is_build_folder(folder):
        raise state_files.StateFileError("'folder' is not a build folder (bN or bN-release)")
    return folder


def chosen_build() -> Path | None:
    """The cached llama-server the user chose, while it is still there (None: none chosen)."""
    folder = state_files.read_json(paths.server_cache_dir() / CHOICE_FILE, "the chosen llama-server build", _choice)
    if folder is None:
        return None
    exe = paths.server_cache_dir() / folder / EXE
    return exe if is_executable(exe) else None


def choose_build(folder: str) -> None:
    """Record ``folder`` (``bN`` or ``bN-release``) as the cached build to use; raises ``OSError``."""
    if not is_build_folder(folder):
        raise ValueError(f"{folder!r} is not a build folder")
    state_files.write_json(paths.ensure(paths.server_cache_dir()) / CHOICE_FILE, {"folder": folder}, indent=1)


def cache_source(exe: Path) -> str:
    """How a cached build got there, for the "Found via" line: read from its build_info.json."""
    info = build_record.read(exe.parent)
    if info is None:
        return "launcher cache"
    backend = info.get("backend") if isinstance(info.get("backend"), str) else None
    if build_record.is_release(info):
        return f"llama.cpp release {info.get('release', exe.parent.name)}" + (f" ({backend})" if backend else "") + \
            ", downloaded by the launcher"
    return "built by the launcher" + (f" ({backend})" if backend else "")


def cache_label(path: str) -> str | None:
    """How a llama-server in the launcher's cache got there; None for any other path."""
    p = Path(path)
    try:
        in_cache = os.path.samefile(p.parent.parent, paths.server_cache_dir()) and p.parent.name.startswith("b")
    except OSError:
        return None
    return cache_source(p) if in_cache else None


def candidates(
    explicit: str | None = None,
    explicit_source: str = "--binary",
    env: dict[str, str] | None = None,
    home: Path | None = None,
) -> list[Candidate]:
    """Every llama-server found, in the order they are preferred; duplicates removed."""
    env = dict(os.environ) if env is None else env
    ordered: list[tuple[Path, str]] = []
    if explicit:
        ordered.append((Path(explicit).expanduser(), explicit_source))
    if env.get("LLAMA_SERVER"):
        ordered.append((Path(env["LLAMA_SERVER"]).expanduser(), "LLAMA_SERVER"))
    chosen = chosen_build()
    if chosen is not None:
        ordered.append((chosen, cache_source(chosen) + CHOSEN))
    bdir = bundled_dir()
    if bdir is not None:
        ordered.append((bdir / EXE, "bundled with the app"))
    on_path = shutil.which(EXE, path=env.get("PATH", ""))
    if on_path:
        ordered.append((Path(on_path), "PATH"))
    ordered.extend(well_known_places(home, env))
    ordered.extend((p, cache_source(p)) for p in cached_builds())
    out: list[Candidate] = []
    seen: set[str] = set()
    for path, source in ordered:
        explicit_choice = source in (explicit_source, "LLAMA_SERVER")
        if not explicit_choice and not is_executable(path):
            continue
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            continue
        seen.add(key)
        out.append(Candidate(str(path), source))
    return out


def find_server(explicit: str | None = None, explicit_source: str = "--binary") -> Candidate | None:
    """The preferred llama-server. An explicit choice is returned even if it is missing, so the
    caller can say exactly what is wrong with it rather than silently using another binary."""
    found = candidates(explicit, explicit_source)
    return found[0] if found else None
