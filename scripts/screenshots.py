"""Screenshots of the real app, the real llama-server and the demo model: the pictures in README.md and docs/.

    python scripts/screenshots.py [OUT_DIR]          (default: docs/screenshots)

It runs offscreen by itself (``QT_QPA_PLATFORM=offscreen``, no display needed; under ``xvfb-run`` it
uses the virtual screen instead), in throw-away launcher homes, and the test suite runs it
(tests/test_screenshots.py), so the pictures are regenerated and checked, not guessed:

1. ``first-start``: an empty home on a computer without llama-server or models (the build cache, the
   demo model's folder and HOME empty, PATH and the usual install places hidden from discovery); llama.cpp's releases come from a local copy
   of GitHub's answer for b11434 (tests/fixtures/releases, made from llama.cpp's workflow files), so
   the download offer is the one a person online would see;
2. ``launch-setup`` (and at 1024×640, and dark): the demo model's setup and command preview;
3. ``launched``: the server ready, its address in the toolbar;
4. ``live-outside``: the Live panel while another program's request (a plain HTTP POST, as curl
   sends it) is being answered, after an earlier one: its row in the activity table, its bar;
5. ``live`` (and at 1024×640, and dark): after a Try it reply; ``logs``: the Logs tab;
6. ``tune-confirm`` and ``tune-result``: Tune's question with its estimate, then its result, really
   measured on this machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
NAMES = ("first-start", "launch-setup", "launched", "live-outside", "live", "logs", "launch-setup-1024", "live-1024",
         "tune-confirm", "tune-result", "live-dark", "launch-setup-dark")
SIZE, SMALL = (1280, 820), (1024, 640)

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LLAMA_LAUNCHER_HOME"] = tempfile.mkdtemp(prefix="llama-launcher-shots-")

from PySide6.QtCore import QTimer  # noqa: E402 - after the platform is chosen
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget  # noqa: E402

from llama_launcher.core.models.catalog import demo_model_path  # noqa: E402
from llama_launcher.core.server.process import ServerState  # noqa: E402
from llama_launcher.core.settings import store as settings_store  # noqa: E402
from llama_launcher.core.settings.launch import ModelSettings  # noqa: E402
from llama_launcher.ui.main_window import TAB_LIVE, TAB_LOGS, TAB_SERVER, TAB_SETUP, MainWindow  # noqa: E402
from llama_launcher.ui.resources import icon, stylesheet  # noqa: E402


class Shots:
    def __init__(self, app: QApplication) -> None:
        self.app = app

    def pump(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.app.processEvents()
            if pred():
                return
            time.sleep(0.02)
        raise SystemExit(f"screenshots: timed out waiting for {what}")

    def settle(self, seconds: float = 0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def shot(self, widget: QWidget, name: str) -> None:
        self.settle()
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        print(path, flush=True)


def window(size: tuple[int, int]) -> MainWindow:
    w = MainWindow()
    w.resize(*size)
    w.show()
    return w


def first_start(s: Shots) -> None:
    """An empty home, no llama-server anywhere: the window opens on the llama-server tab with its offers."""
    sys.path.insert(0, str(ROOT / "tests"))
    from llama_launcher.core.llama_server import discovery

    from release_server import ReleaseServer

    saved = {k: os.environ.get(k) for k in ("LLAMA_LAUNCHER_HOME", "LLAMA_LAUNCHER_SERVER_CACHE", "PATH",
                                            "LLAMA_SERVER", "LLAMA_LAUNCHER_RELEASES_URL", "LLAMA_LAUNCHER_DEMO_DIR",
                                            "HOME")}
    places = discovery.well_known_places
    releases = ReleaseServer().start()
    os.environ.update(LLAMA_LAUNCHER_HOME=tempfile.mkdtemp(prefix="llama-launcher-first-"),
                      LLAMA_LAUNCHER_SERVER_CACHE=tempfile.mkdtemp(prefix="llama-launcher-no-builds-"),
                      PATH=tempfile.mkdtemp(prefix="no-bin-"), LLAMA_LAUNCHER_RELEASES_URL=releases.api_url,
                      LLAMA_LAUNCHER_DEMO_DIR=tempfile.mkdtemp(prefix="no-demo-"),  # no model yet either
                      HOME=tempfile.mkdtemp(prefix="empty-home-"))  # nor in LM Studio's or Hugging Face's folders
    os.environ.pop("LLAMA_SERVER", None)
    discovery.well_known_places = lambda home=None, env=None: []  # this machine's own installs, hidden
    try:
        w = window(SIZE)
        s.pump(lambda: w.tabs.currentIndex() == TAB_SERVER and w.server_panel.download_btn.isEnabled(), 60,
               "the download offer")
        s.shot(w, "first-start")
        w.shutdown()
        w.close()
    finally:
        discovery.well_known_places = places
        releases.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def outside_request(base_url: str, max_tokens: int) -> dict:
    """What curl sends: a plain HTTP POST to the server, not through the app."""
    body = json.dumps({"messages": [{"role": "user", "content": "Write a poem about the sea."}],
                       "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(base_url + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:  # noqa: S310 - the script's own server on 127.0.0.1
        return json.loads(r.read())


def in_background(fn: Callable[..., dict], *args: object) -> dict:
    out: dict = {}
    threading.Thread(target=lambda: out.setdefault("answer", fn(*args)), daemon=True).start()
    return out


def answer_dialog(s: Shots, button: str, name: str) -> None:
    """Shoot the question Tune asks, then press ``button`` in it."""
    def look() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            s.shot(box, name)
            next(b for b in box.buttons() if b.text() == button).click()
        else:
            QTimer.singleShot(50, look)

    QTimer.singleShot(50, look)


def dark_palette() -> QPalette:
    """What a system in dark mode gives the app (a virtual screen has no theme to follow)."""
    dark = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                        (QPalette.ColorRole.Base, "#17181a"), (QPalette.ColorRole.AlternateBase, "#26282b"),
                        (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.Button, "#2d2f33"),
                        (QPalette.ColorRole.ButtonText, "#e8eaed"), (QPalette.ColorRole.Highlight, "#4f8cff"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.Mid, "#8a8d91"),
                        (QPalette.ColorRole.Midlight, "#3a3d41"), (QPalette.ColorRole.PlaceholderText, "#8a8d91"),
                        (QPalette.ColorRole.ToolTipBase, "#2d2f33"), (QPalette.ColorRole.ToolTipText, "#e8eaed")):
        dark.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        dark.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6e72"))
    return dark


def demo_session(s: Shots, demo: Path) -> None:
    settings = settings_store.AppSettings(folders=[str(demo.parent)])
    settings.set_model(str(demo), ModelSettings(threads=2))
    settings_store.save(settings)
    w = window(SIZE)
    s.pump(lambda: w.planner.plan is not None and w.llama.caps is not None, 120, "a plan")
    w.tabs.setCurrentIndex(TAB_SETUP)
    s.settle(1.0)  # llama.cpp's own memory projection arrives
    s.shot(w, "launch-setup")
    w.launch()
    s.pump(lambda: w.server.state in (ServerState.READY, ServerState.FAILED), 240, "the server")
    if w.server.state is not ServerState.READY:
        raise SystemExit(f"screenshots: the server failed: {w.banner.text()}")
    s.pump(lambda: w.server.checks is not None, 60, "the server checks")
    s.shot(w, "launched")
    first = in_background(outside_request, w.server.base_url, 48)  # an earlier request: its row and bar
    s.pump(lambda: "answer" in first and bool(w.live.activity.replies), 120, "the first outside reply")
    job = in_background(outside_request, w.server.base_url, 400)
    s.pump(lambda: w.live.source.text().startswith("other clients: a reply on the way") or "answer" in job, 120,
           "the outside reply on its way")
    s.shot(w, "live-outside")
    s.pump(lambda: "answer" in job and len(w.live.activity.replies) >= 2, 300, "the second outside reply")
    w.live.max_tokens.setValue(96)
    w.live.prompt.setPlainText("The three primary colours are")
    w.live.send_btn.click()
    s.pump(lambda: not w.live.stop_btn.isEnabled() and "t/s" in w.live.reply_status.text(), 240, "the reply")
    s.shot(w, "live")
    w.tabs.setCurrentIndex(TAB_LOGS)
    s.shot(w, "logs")
    w.resize(*SMALL)
    w.tabs.setCurrentIndex(TAB_SETUP)
    s.shot(w, "launch-setup-1024")
    w.tabs.setCurrentIndex(TAB_LIVE)
    s.shot(w, "live-1024")
    w.resize(*SIZE)
    tune(s, w)
    app = s.app
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(stylesheet())
    w.tabs.setCurrentIndex(TAB_LIVE)
    s.shot(w, "live-dark")
    w.tabs.setCurrentIndex(TAB_SETUP)
    s.shot(w, "launch-setup-dark")
    w.shutdown()
    w.close()


def tune(s: Shots, w: MainWindow) -> None:
    """Tune for real (the running server is stopped first, as Tune asks), then its result in Launch setup."""
    w.tabs.setCurrentIndex(TAB_SETUP)
    answer_dialog(s, "Stop and tune", "tune-confirm")
    w.launch_panel.tune.button.click()
    s.pump(lambda: w.tuner.running, 120, "Tune to start")
    s.pump(lambda: not w.tuner.running, 900, "Tune to finish")
    box = w.launch_panel.tune
    if "Fastest on this machine" not in box.label.text():
        raise SystemExit(f"screenshots: Tune did not finish: {box.label.text()} {w.banner.text()}")
    scroll = w.launch_panel.split.widget(0)
    scroll.ensureWidgetVisible(box)  # type: ignore[attr-defined]
    s.shot(w, "tune-result")


def main() -> int:
    demo = demo_model_path()
    if not demo.is_file():
        print(f"demo model missing: {demo}; run 'llama-launcher demo-model'", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(stylesheet())
    s = Shots(app)
    first_start(s)
    demo_session(s, demo)
    missing = [n for n in NAMES if not (OUT / f"{n}.png").is_file()]
    if missing:
        print(f"screenshots: not written: {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
