"""Start the desktop app (or, with ``--smoke-test``, build the window offscreen and exit)."""

from __future__ import annotations

import os
import sys
import traceback

from llama_launcher import __version__

MAX_CRASH_LOG_BYTES = 1024 * 1024


def _excepthook(exc_type, exc, tb) -> None:  # pragma: no cover - last resort, never a traceback dialog
    from llama_launcher.core.state import paths

    try:
        folder = paths.ensure(paths.log_dir())
        crash = folder / "crash.log"
        if crash.is_file() and crash.stat().st_size > MAX_CRASH_LOG_BYTES:  # bounded: one older file kept
            os.replace(crash, folder / "crash.1.log")
        with open(crash, "a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc_type, exc, tb)) + "\n")
    except OSError:
        pass  # a read-only or full disk: the traceback still reaches stderr below
    sys.__excepthook__(exc_type, exc, tb)


PLATFORM_HINT = ("the window cannot open: Qt could not load its platform plugin{which}. {libs} Check that DISPLAY or "
                 "WAYLAND_DISPLAY is set; QT_DEBUG_PLUGINS=1 names the library that failed to load. The command "
                 "line works without a window: llama-launcher --help")
# Qt says this one by name (a warning just before its abort); any other missing library it does not
CURSOR_LIBS = ("Qt named the missing library: install libxcb-cursor0 (Debian/Ubuntu: sudo apt install "
               "libxcb-cursor0; Fedora: sudo dnf install xcb-util-cursor).")
# Qt 6's X11 requirements (doc.qt.io, "Qt for X11 Requirements"), as Debian/Ubuntu name the packages
XCB_LIBS = ("On Linux a system library is missing, usually one of Qt's X11 libraries (Debian/Ubuntu: sudo apt "
            "install libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 "
            "libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0; Fedora: sudo dnf install "
            "xcb-util-cursor xcb-util-wm xcb-util-image xcb-util-keysyms xcb-util-renderutil libxkbcommon-x11).")


def _platform_hint(message: str, cursor_named: bool = False) -> str | None:
    """The one-line advice for Qt's "Could not load the Qt platform plugin" (it aborts right after).
    ``cursor_named``: Qt warned before that xcb-cursor0 is needed (the only library it names)."""
    if "platform plugin" not in message.lower():
        return None
    import re

    m = re.search(r'platform plugin "([^"]+)"', message)
    return PLATFORM_HINT.format(which=f" '{m.group(1)}'" if m else "", libs=CURSOR_LIBS if cursor_named else XCB_LIBS)


def _install_platform_hint() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    previous: list = []
    cursor_named: list[bool] = [False]

    def handler(kind, context, message: str) -> None:
        if "cursor0" in message:  # "xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin"
            cursor_named[0] = True
        hint = _platform_hint(message, cursor_named[0]) if kind == QtMsgType.QtFatalMsg else None
        if hint:
            print(f"error: {hint}", file=sys.stderr, flush=True)
            os._exit(1)  # Qt would abort with a core dump and its own multi-line text
        if previous and previous[0] is not None:
            previous[0](kind, context, message)
        else:
            print(message, file=sys.stderr)

    previous.append(qInstallMessageHandler(handler))


def run_app(smoke_test: bool = False) -> int:
    if smoke_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _install_platform_hint()
    from PySide6.QtWidgets import QApplication

    from llama_launcher.core.server import orphan_guard
    from llama_launcher.ui.main_window import MainWindow
    from llama_launcher.ui.resources import icon, stylesheet

    sys.excepthook = _excepthook
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Llama Launcher")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("llama-launcher")
    app.setDesktopFileName("llama-launcher")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(stylesheet())
    ended = orphan_guard.sweep()
    window = MainWindow()
    if ended:
        window.notices.show("sweep", f"ended {len(ended)} llama-server process(es) left running by an earlier session")
    app.aboutToQuit.connect(window.shutdown)
    if smoke_test:
        return _smoke(app, window)
    _quit_on_signals(app, window)
    window.show()
    return int(app.exec())


def quit_without_asking(app, window) -> None:
    """A quit the user already decided on (logout, `kill`, Ctrl+C): everything is stopped and the app
    ends. Closing the window would ask "Stop and close?" while a server runs, and a question nobody
    sees would keep the app, and its server, alive through a logout."""
    window.shutdown()  # stops the server, a tune, a download, a build; the close that follows asks nothing
    app.quit()


def _quit_on_signals(app, window) -> None:
    """SIGTERM/SIGINT (logout, `kill`, Ctrl+C in a terminal) quit at once, the server stopped first.

    Python runs signal handlers only when it gets control, so a timer wakes the interpreter while
    Qt's event loop runs; the quit itself runs from the event loop, not inside the handler.
    """
    import signal

    from PySide6.QtCore import QTimer

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            signal.signal(sig, lambda *_: QTimer.singleShot(0, lambda: quit_without_asking(app, window)))
    timer = QTimer(app)
    timer.setInterval(250)
    timer.timeout.connect(lambda: None)
    timer.start()


def _smoke(app, window) -> int:
    """Build the main window, wait for the binary probe, print what was found, exit 0."""
    from PySide6.QtCore import QElapsedTimer

    from llama_launcher.core.state.safe_text import safe_text

    window.show()
    timer = QElapsedTimer()
    timer.start()
    while timer.elapsed() < 60_000:
        app.processEvents()
        llama = window.llama
        probed = llama.binary is None or llama.caps is not None or bool(llama.probe_error)
        if probed and window.catalog.result is not None:  # the scan too: what it could not save is said
            break
        app.thread().msleep(20)
    window.notices.poll_files()
    if window.banner.text():  # what the window says first (a read-only home, a corrupt file)
        for line in window.banner.text().splitlines():
            print(f"smoke test: banner: {safe_text(line)}")
    if llama.binary is None:
        print("smoke test: main window built; no llama-server found")
    elif llama.caps is not None:
        print(f"smoke test: main window built; llama-server {llama.binary.path} ({llama.caps.summary()})")
    else:
        print(f"smoke test: main window built; llama-server probe failed: {llama.probe_error}")
    window.shutdown()
    window.close()
    return 0
