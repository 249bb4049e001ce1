"""The command line: ``llama-launcher`` opens the window or runs a headless twin of a window action.

One module per command group (``listing``, ``plan``, ``serve``, ``tuning``, ``get_server``), the
inputs they share (``inputs``) and one way of printing (``output``); ``main`` parses and dispatches.
"""

from llama_launcher.cli.main import main

__all__ = ["main"]
