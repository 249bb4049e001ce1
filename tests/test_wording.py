"""How the launcher writes to a person, decided in core (issue 24): units, a broken file, a build's abilities.

Qt-free: each test reads the words a window or the CLI shows. The window's tests
(test_window_reads_right.py) check that those words reach the screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_launcher.core.llama_server.fetch import OFFLINE, DownloadError
from llama_launcher.core.llama_server.offers import (
    NO_SERVER_NOTICE,
    NO_SERVER_OFFLINE,
    build_offer,
    is_offline,
    no_server_notice,
    release_status,
)
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.models.catalog import reveal_words
from llama_launcher.core.models.file_problem import INCOMPLETE, explain, explain_text
from llama_launcher.core.models.model_info import read_model_info as read_model
from llama_launcher.core.state.units import file_size, memory_mib
from llama_launcher.core.state.words import sentence
from llama_launcher.ui.app import _platform_hint

from fake_server import make_fake_server
from gguf_factory import write_model


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 bytes"), (1, "1 byte"), (20, "20 bytes"), (999, "999 bytes"), (1000, "1.00 kB"), (1536, "1.54 kB"),
    (253_113_024, "253 MB"), (25_311_302, "25.3 MB"), (999_600_000, "1.00 GB"), (2_530_000_000, "2.53 GB"),
    (18_000_000_000, "18.0 GB"), (4_503_599_627_370_496, "4,503,600 GB"),
])
def test_file_sizes_are_decimal_with_their_unit(n: int, text: str) -> None:
    """The README's 253 MB for the demo model's 253,113,024 bytes (not the MiB figure 241 under the name MB),
    and a 20-byte file is 20 bytes, never '0 MB'."""
    assert file_size(n) == text


@pytest.mark.parametrize(("mib", "text"), [(0, "0 MiB"), (512, "512 MiB"), (1023, "1,023 MiB"), (1024, "1.0 GiB"),
                                           (16_000, "15.6 GiB"), (81_079, "79.2 GiB")])
def test_memory_is_binary_with_its_unit(mib: int, text: str) -> None:
    assert memory_mib(mib) == text


def test_a_truncated_file_leads_with_what_it_most_likely_is(tmp_path: Path) -> None:
    """A model cut off inside its tokenizer array (an unfinished download), as the real reader words it."""
    whole = write_model(tmp_path / "whole.gguf", arch="llama", name="Whole", tokens=4000)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    info = read_model(cut)
    assert info.error and info.error.startswith("truncated")
    problem = explain(info.error)
    assert problem.headline == INCOMPLETE
    assert problem.text() == f"{INCOMPLETE} ({info.error})"  # the detail is kept, after the headline


@pytest.mark.parametrize(("content", "headline"), [
    (b"not a model at all, just text....", "This is not a GGUF model file"),
    (b"GGUF", "This file is incomplete"),
    (b"GGUF\0\0\0\0", "This file is incomplete"),  # 8 bytes: cut before its counts, not "damaged"
    (b"GGUF" + b"\0" * 28, "This file is damaged"),  # long enough, but version 0: no GGUF ever was
])
def test_other_broken_files_get_words_too(tmp_path: Path, content: bytes, headline: str) -> None:
    p = tmp_path / "bad.gguf"
    p.write_bytes(content)
    info = read_model(p)
    assert explain_text(info.error).startswith(headline)
    assert info.error in explain_text(info.error)


def test_an_unreadable_file_says_the_reason_once() -> None:
    assert explain_text("cannot read the file: Permission denied") == "This file cannot be read: Permission denied"
    assert explain_text("something new").startswith("This file cannot be used as a model (something new)")


def test_a_builds_abilities_in_words(tmp_path: Path) -> None:
    """'Speculative decoding: MTP, …', not 'spec types: draft-simple, draft-eagle3, …; ngram-mod knobs: current'."""
    current = probe(str(make_fake_server(tmp_path / "new", "b11434-current")))
    words = current.in_words()
    assert words[0].startswith("Speculative decoding: MTP, EAGLE3 head, DFlash head, DSpark head, Draft model, ngram-mod")
    assert not any("spec types" in w or "knobs" in w or "draft-simple" in w for w in words)
    assert "--fit" in words[1] and "--metrics" in words[1]
    old = probe(str(make_fake_server(tmp_path / "old", "b8000-legacy-ngram")))
    assert any("older option names" in w for w in old.in_words())


@pytest.mark.parametrize(("text", "shown"), [
    ("cannot launch: port 8080 is already in use", "Cannot launch: port 8080 is already in use"),
    ("tuning cancelled: nothing was stored", "Tuning cancelled: nothing was stored"),
    ("llama-server is ready at http://127.0.0.1:8080/v1", "llama-server is ready at http://127.0.0.1:8080/v1"),
    ("mtp-Qwen3.6-8B-Q8_0.gguf is an MTP head", "mtp-Qwen3.6-8B-Q8_0.gguf is an MTP head"),  # a file keeps its name
    ("gemma.gguf cannot be read", "gemma.gguf cannot be read"),
    ("draft-mtp is not in this build", "draft-mtp is not in this build"),
    ("b11434 is installed", "b11434 is installed"),
    ("  ", "  "),
])
def test_a_message_shown_alone_starts_as_a_sentence_but_a_name_keeps_its_case(text: str, shown: str) -> None:
    assert sentence(text) == shown


def test_the_source_build_says_what_it_found_lacks_or_needs() -> None:
    """Offline it is offered only with its sources already downloaded; without tools it names them."""
    lacks = build_offer(["cmake", "a C++ compiler"], [], offline=False, sources_here=False, platform="linux")
    assert not lacks.ok and lacks.words.startswith("needs cmake and a C++ compiler, not found on this computer: ")
    assert "sudo apt install cmake g++" in lacks.words
    assert "xcode-select --install" in build_offer(["cmake"], [], False, False, platform="darwin").words
    offline = build_offer([], ["CMake", "g++"], offline=True, sources_here=False, platform="linux")
    assert not offline.ok and "needs the internet once" in offline.words and "offline" in offline.words
    cached = build_offer([], ["CMake", "g++"], offline=True, sources_here=True, platform="linux")
    assert cached.ok and cached.words.startswith("CMake and g++ found; ") and "already downloaded" in cached.words
    online = build_offer([], ["CMake", "clang++"], offline=False, sources_here=False, platform="darwin")
    assert online.ok and online.words == "CMake and clang++ found; about 10 minutes on 2 cores"


def test_the_banner_promises_a_download_only_when_one_may_come() -> None:
    offline = release_status(str(DownloadError(f"{OFFLINE} (api.github.com could not be looked up: x)")))
    assert is_offline(offline) and no_server_notice(offline) == NO_SERVER_OFFLINE
    assert "offers a download" not in NO_SERVER_OFFLINE
    assert no_server_notice("") == NO_SERVER_NOTICE and no_server_notice(release_status("HTTP 500")) == NO_SERVER_NOTICE


def test_reveal_says_what_it_opens_on_each_os() -> None:
    assert reveal_words("darwin") == "Show the selected model in Finder"
    assert reveal_words("win32") == "Show the selected model in File Explorer"
    assert reveal_words("linux") == "Open the selected model's folder in your file manager"  # xdg-open opens the folder


def test_a_missing_qt_library_is_named_only_when_qt_named_it() -> None:
    """Qt names libxcb-cursor0 in a warning before its abort; for any other missing library (a walk found
    libxcb-icccm4) the hint lists Qt's X11 libraries instead of blaming the cursor library."""
    fatal = 'This application failed to start because no Qt platform plugin could be initialized. ' \
            'Could not load the Qt platform plugin "xcb" in "" even though it was found.'
    named = _platform_hint(fatal, cursor_named=True)
    assert named is not None and "Qt named the missing library: install libxcb-cursor0" in named and "'xcb'" in named
    other = _platform_hint(fatal)
    assert other is not None and "libxcb-icccm4" in other and "Qt named" not in other and "QT_DEBUG_PLUGINS=1" in other
    assert _platform_hint("some other fatal message") is None
