"""How every child llama-server process is started: clean environment, no console window.

A stale ``LLAMA_ARG_*`` variable overrides (or, for removed options such as
``LLAMA_ARG_DRAFT_MAX``, breaks) the flags the launcher passes, even for ``--help``; a stray
``LLAMA_API_KEY`` would set a key the launcher does not know about.
"""

from __future__ import annotations

import os
import subprocess
import sys


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in list(env):
        # LLAMA_API_KEY too: a key left in the user's shell must not protect (or open) a server silently;
        # the launcher passes its own key when LAN is on
        if key.upper().startswith("LLAMA_ARG_") or key.upper() == "LLAMA_API_KEY":
            del env[key]
    return env


def no_window_flags() -> int:
    """On Windows, start console programs without flashing a console window."""
    if sys.platform == "win32":
        return int(getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000))
    return 0
