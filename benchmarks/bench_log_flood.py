"""The window under a log flood: 100,000 lines from a fake server; how late does the GUI's event loop run?

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_log_flood.py [LINES]

A 10 ms QTimer records how late each tick fires while the real window receives the flood through
the real worker thread (batched every 100 ms). Reports the worst and the 99th-percentile delay.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    home = tempfile.mkdtemp(prefix="flood-")
    os.environ["LLAMA_LAUNCHER_HOME"] = home
    os.environ["FAKE_FLOOD_LINES"] = str(lines)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from llama_launcher.core.settings import store as settings_store
    from llama_launcher.ui.main_window import MainWindow

    from fake_server import make_fake_server
    from gguf_factory import write_model

    flood = make_fake_server(Path(home) / "bin", "b11434-current", behaviour="flood")
    write_model(Path(home) / "models" / "m.gguf")
    settings_store.save(settings_store.AppSettings(folders=[str(Path(home) / "models")], binary=str(flood)))
    app = QApplication.instance() or QApplication([])
    w = MainWindow()
    w.show()
    end = time.monotonic() + 60
    while w.planner.plan is None and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    delays: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        delays.append((now - last[0] - 0.010) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    w.launch()
    while w.logs.total_lines < lines and time.perf_counter() - t0 < 120:
        app.processEvents()
        time.sleep(0.001)
    elapsed = time.perf_counter() - t0
    timer.stop()
    w.shutdown()
    delays.sort()
    print(json.dumps({"lines": w.logs.total_lines, "seconds": round(elapsed, 2),
                      "view_blocks": w.logs.view.document().blockCount(), "history": len(w.logs.history),
                      "max_delay_ms": round(max(delays), 1), "p99_delay_ms": round(delays[int(len(delays) * 0.99)], 1),
                      "ticks": len(delays)}))


if __name__ == "__main__":
    main()
