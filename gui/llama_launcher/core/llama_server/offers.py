"""What the llama-server tab offers and says when there is no usable llama-server, decided once.

A first start used to show a box headed "Found on this computer" that said nothing was found, the
same news in three places, ``brew install llama.cpp`` on Linux, and a resolver's message for being
offline. The rules now:

- the "found on this computer" offer appears only when something was found;
- the package-manager command is offered where one is standard: Homebrew on macOS, winget on
  Windows. Linux has none that every distribution shares (Debian 12 packages no llama.cpp), so the
  download and the source build are what is offered there;
- the release check's failure is said as what it means to the person ("this computer seems to be
  offline"), with the network's own reason kept after it (core/llama_server/fetch.py words it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

NO_SERVER_NOTICE = "No llama-server yet: the llama-server tab offers a download for this computer and other ways to get one"


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


def build_needs(platform: str | None = None) -> str:
    """What a source build needs on this OS, in the words under its button."""
    platform = sys.platform if platform is None else platform
    tools = {"win32": "CMake and Visual Studio Build Tools (C++)", "darwin": "CMake and the Xcode command line tools"}
    return f"needs {tools.get(platform, 'CMake and a C++ compiler (g++ or clang)')}; about 10 minutes on 2 cores"


def release_status(error: str) -> str:
    """The line under the download button when no release can be offered ('' when one is)."""
    if not error:
        return ""
    return f"No download offered right now: {error}"
