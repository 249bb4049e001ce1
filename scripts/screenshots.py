"""Screenshots of the real app with the real server running the demo model (for the README).

Run under a virtual screen:  xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/screenshots.py [OUT_DIR]
It starts the window at 1280x820, launches llama-server on the demo model, sends a text through
"Try it" (the demo model is a base model: plain completion), and saves the live panel with numbers,
the logs tab, the launch setup, the same window at 1024x640, and the live panel and launch setup in
dark mode. Everything runs in a throw-away launcher home folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")


def main() -> int:
    home = tempfile.mkdtemp(prefix="llama-launcher-shots-")
    os.environ["LLAMA_LAUNCHER_HOME"] = home
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from llama_launcher.core.models.catalog import demo_model_path
    from llama_launcher.core.server.process import ServerState
    from llama_launcher.core.settings import store as settings_store
    from llama_launcher.core.settings.launch import ModelSettings
    from llama_launcher.ui.app import run_app  # noqa: F401 - same start-up code path as the app
    from llama_launcher.ui.main_window import MainWindow
    from llama_launcher.ui.resources import icon, stylesheet

    demo = demo_model_path()
    if not demo.is_file():
        print(f"demo model missing: {demo}; run 'llama-launcher demo-model'", file=sys.stderr)
        return 1
    s = settings_store.AppSettings(folders=[str(demo.parent)])
    s.set_model(str(demo), ModelSettings(threads=2))
    settings_store.save(s)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(stylesheet())
    win = MainWindow()
    win.resize(1280, 820)
    win.show()

    def pump(pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if pred():
                return
            time.sleep(0.02)
        raise SystemExit(f"timed out waiting for {what}")

    def shot(name: str) -> None:
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.png"
        win.grab().save(str(path))
        print(path)

    pump(lambda: win.plan is not None, 60, "a plan")
    launch_tab, live_tab, logs_tab = 0, 1, 2
    win.tabs.setCurrentIndex(launch_tab)
    win.launch_panel.advanced.toggle.setChecked(False)
    shot("launch-setup")
    win.launch()
    pump(lambda: win.state in (ServerState.READY, ServerState.FAILED), 240, "the server")
    if win.state is not ServerState.READY:
        print("server failed:", win.banner.text(), file=sys.stderr)
        return 1
    pump(lambda: win.checks is not None, 60, "the server checks")
    win.live.max_tokens.setValue(96)
    win.live.prompt.setPlainText("The three primary colours are")
    win.live.send_btn.click()
    pump(lambda: win.live.stop_btn.isEnabled() is False and "t/s" in win.live.reply_status.text(), 240, "the reply")
    win.tabs.setCurrentIndex(live_tab)
    shot("live")
    win.tabs.setCurrentIndex(logs_tab)
    shot("logs")
    win.resize(1024, 640)
    win.tabs.setCurrentIndex(launch_tab)
    shot("launch-setup-1024")
    win.tabs.setCurrentIndex(live_tab)
    shot("live-1024")
    win.resize(1280, 820)
    # what a system in dark mode gives the app: a dark palette (Xvfb has no theme to follow)
    app.setStyle("Fusion")
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
    app.setPalette(dark)
    app.setStyleSheet(stylesheet())
    win.tabs.setCurrentIndex(live_tab)
    shot("live-dark")
    win.tabs.setCurrentIndex(launch_tab)
    shot("launch-setup-dark")
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
