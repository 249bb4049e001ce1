"""The one mark of an error meant for the user: its message is one complete line, said as it is.

Every error the core raises for bad input or a failed step (a corrupt GGUF, a refused extra
argument, a download that failed, a build without a compiler) derives from :class:`UserFacing`.
Whoever runs core work (the CLI, the window's jobs) shows such a message as it is, and anything
else as an unexpected failure, with its type: one place decides, not every caller.
"""

from __future__ import annotations


class UserFacing(Exception):
    """An error whose ``str()`` is one line a person can act on."""
