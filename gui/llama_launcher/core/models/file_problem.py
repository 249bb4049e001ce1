"""A model file that cannot be used, said to a person: what it most likely is first, the reader's detail after.

The header reader's messages are exact ("truncated or corrupt GGUF: array tokenizer.ggml.scores
claims 262144 elements but only 586458 bytes remain") and are kept, but a person needs the headline
first: that file is almost always an unfinished download. The window's title, the models table,
Launch's reason and the CLI's ``models`` all word a problem through :func:`explain`.
"""

from __future__ import annotations

from dataclasses import dataclass

INCOMPLETE = "This file is incomplete — probably an unfinished download; download it again"


@dataclass(frozen=True)
class FileProblem:
    headline: str  # what it most likely is, and what to do
    detail: str  # the reader's own line

    def text(self) -> str:
        """'<headline> (<detail>)': the headline for the person, the detail for a bug report."""
        return f"{self.headline} ({self.detail})" if self.detail and self.detail != self.headline else self.headline


# (how the reader's line starts, the headline); the first that matches wins
_HEADLINES: tuple[tuple[str, str], ...] = (
    ("truncated", INCOMPLETE),
    ("not a GGUF file", "This is not a GGUF model file (it does not start with GGUF's signature)"),
    ("GGUF version 1", "This GGUF file is too old for llama.cpp; convert or download the model again"),
    ("unsupported GGUF version", "This GGUF file is newer than the launcher understands; update Llama Launcher"),
    ("corrupt GGUF", "This file is damaged: its header holds numbers no model has; download it again"),
    ("unsupported GGUF value", "This file holds metadata llama.cpp does not read; download it again"),
    ("not a regular file", "This is not a regular file (a model must be a .gguf file)"),
    ("the file changed while", "This file is still being written; rescan once it is complete"),
    ("split model is missing part 1", "Part 1 of this split model is missing; the model starts from part 1"),
    ("split part number", "This split part's number does not fit its part count"),
)


def explain(error: str | None) -> FileProblem:
    """The person's headline for a model file's problem, with the reader's line as the detail."""
    detail = (error or "unreadable").strip()
    unreadable = "cannot read the file: "
    if detail.startswith(unreadable):  # the OS's reason is the whole story: no detail to repeat
        return FileProblem(f"This file cannot be read: {detail[len(unreadable):]}", "")
    for start, headline in _HEADLINES:
        if detail.startswith(start):
            return FileProblem(headline, detail)
    return FileProblem("This file cannot be used as a model", detail)


def explain_text(error: str | None) -> str:
    return explain(error).text()
