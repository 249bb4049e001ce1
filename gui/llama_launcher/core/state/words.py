"""How the launcher's messages begin: as sentences.

Core words its messages so that they can sit inside another line ("cannot launch: port 8080 is
already in use"); shown on their own (the banner, the status bar) they start with a capital letter,
as a person writes ("⚠ cannot launch: port …" read as a fragment). A message that starts with a
name written in lower case on purpose (a file, a flag, llama-server) keeps it.
"""

from __future__ import annotations

import re

_NAME_MARKS = re.compile(r"[./\\_\-0-9]")  # a first word with one of these is a name (a file, a flag, a build)


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised, unless it begins with a name spelt in lower case."""
    stripped = text.lstrip()
    if not stripped or not stripped[0].islower():
        return text
    first = re.match(r"[^\s:,;]+", stripped)
    if first is not None and _NAME_MARKS.search(first.group()):  # "mtp-Qwen3.6-8B.gguf is …" keeps its name
        return text
    lead = text[: len(text) - len(stripped)]
    return lead + stripped[0].upper() + stripped[1:]
