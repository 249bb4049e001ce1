"""Fake llama-server executables for edge cases a real binary cannot produce on demand.

``make_fake_server`` writes a small executable script that prints a recorded ``--help`` and
``--version`` (so the probe's real subprocess path runs), or misbehaves in a chosen way.
"""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

HELP_DIR = Path(__file__).parent / "fixtures" / "help"


def make_script(path: Path, body: str) -> Path:
    if sys.platform == "win32":  # pragma: no cover - CI on Windows
        py = path.with_suffix(".py")
        py.write_text(body, encoding="utf-8")
        exe = path.with_suffix(".cmd")
        exe.write_text(f'@"{sys.executable}" "{py}" %*\n', encoding="utf-8")
        return exe
    path.write_text(f"#!{sys.executable}\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_fake_server(folder: Path, era: str | None = None, behaviour: str = "help", name: str = "llama-server") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    help_file = HELP_DIR / f"{era}.help.txt" if era else None
    version_file = HELP_DIR / f"{era}.version.txt" if era else None
    body = textwrap.dedent(f"""
        import os, sys, time, signal
        args = sys.argv[1:]
        behaviour = {behaviour!r}
        for k in os.environ:
            if k.startswith("LLAMA_ARG_"):
                print("error: stale " + k, file=sys.stderr)
                sys.exit(1)
        if behaviour == "sigill":
            os.kill(os.getpid(), signal.SIGILL)
        if behaviour == "hang":
            time.sleep(3600)
        if behaviour == "stubborn" and "--port" in args:  # never listens, and ignores SIGTERM: only SIGKILL ends it
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("loading forever", flush=True)
            time.sleep(3600)
        if "--version" in args:
            sys.stderr.write(open({str(version_file)!r}).read())
            sys.exit(0)
        if "--help" in args:
            sys.stdout.write(open({str(help_file)!r}).read())
            sys.exit(0)
        if "--list-devices" in args:
            print("Available devices:")
            print(os.environ.get("FAKE_DEVICES", "  (none)"))
            sys.exit(0)
        if behaviour == "flood":  # answers the probe, then floods its log as a server
            for i in range(int(os.environ.get("FAKE_FLOOD_LINES", "100000"))):
                print(f"line {{i}} srv  update_slots: all slots are idle " + "x" * 40)
            sys.stdout.flush()
            if os.environ.get("FAKE_FLOOD_THEN") == "fail":  # the line that explains the failure comes last
                print("llama_model_load: error: failed to allocate CPU buffer of size 9999 MiB", flush=True)
                sys.exit(1)
            time.sleep(3600)
        if behaviour == "idle":  # the line llama-server -lv 4 prints after every request, as it prints it
            for i in range(int(os.environ.get("FAKE_IDLE_LINES", "200"))):
                print(f"0.{{i // 60:02d}}.{{i % 60:03d}}.{{i * 7 % 1000:03d}} I srv  update_slots: all slots are idle", flush=True)
            print("0.59.000.000 I srv  log_server_r: done", flush=True)
            time.sleep(3600)
        if behaviour == "spec-abort" and "--port" in args:
            # dies while loading when any speculative flag is passed, as b11434 does on a target converted
            # --no-mtp that kept its nextn key (tests/fixtures/failures/b11434-mtp-on-trunk-only-target.log);
            # without one it serves like "http"
            if any(a.startswith("--spec-") for a in args):
                print("0.00.003.768 I srv    load_model: loading model '" + args[args.index("-m") + 1] + "'", flush=True)
                print('src/models/mimo2.cpp:282: GGML_ASSERT(layer.nextn.eh_proj && "MIMO2 MTP block missing '
                      'nextn.eh_proj") failed', flush=True)
                os.abort()
            behaviour = "http"
        if behaviour == "http":  # answers like a ready llama-server on --port (web UI and template per env)
            import json
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            port = int(args[args.index("--port") + 1])
            webui = os.environ.get("FAKE_WEBUI") == "1"
            drop = os.environ.get("FAKE_TEMPLATE") == "drop"
            key = os.environ.get("LLAMA_API_KEY", "")  # the key, as the real server takes it
            if "--api-key-file" in args:
                key = open(args[args.index("--api-key-file") + 1]).read().strip()

            class H(BaseHTTPRequestHandler):
                def log_message(self, *a):
                    pass

                def _send(self, code, body, kind="application/json"):
                    data = body.encode()
                    self.send_response(code)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                def do_GET(self):
                    if self.path == "/health":
                        self._send(200, '{{"status":"ok"}}')
                    elif self.path == "/metrics" and os.environ.get("FAKE_METRICS") == "off":  # as without --metrics
                        self._send(501, '{{"error":{{"code":501,"message":"This server does not support metrics endpoint. Start it with `--metrics`"}}}}')
                    elif self.path == "/metrics" and os.environ.get("FAKE_METRICS"):  # a recorded answer (a file)
                        self._send(200, open(os.environ["FAKE_METRICS"]).read(), "text/plain; version=0.0.4")
                    elif self.path == "/" and webui:
                        self._send(200, "<!doctype html><html><body>llama.cpp</body></html>", "text/html")
                    else:
                        self._send(404, '{{"error":{{"code":404,"message":"File Not Found"}}}}')

                def do_POST(self):
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{{}}")
                    if key and self.headers.get("Authorization") != "Bearer " + key:
                        self._send(401, '{{"error":{{"code":401,"message":"Invalid API Key"}}}}')
                    elif self.path == "/v1/chat/completions":  # one streamed chunk echoing the last message
                        said = body["messages"][-1]["content"]
                        chunk = json.dumps({{"choices": [{{"delta": {{"content": "echo: " + said}}}}]}})
                        # the timing lines b11434 prints after each request (slot print_timing)
                        print("slot print_timing: id  0 | task 7 | prompt eval time =      50.00 ms /    17 tokens "
                              "(    2.94 ms per token,   340.00 tokens per second)", flush=True)
                        print("slot print_timing: id  0 | task 7 |        eval time =     400.00 ms /    25 tokens "
                              "(   16.00 ms per token,    62.50 tokens per second)", flush=True)
                        self._send(200, f"data: {{chunk}}\\n\\ndata: [DONE]\\n\\n", "text/event-stream")
                    elif self.path == "/apply-template":
                        text = "gemma" if drop else "".join(m["content"] for m in body.get("messages", []))
                        self._send(200, json.dumps({{"prompt": text}}))
                    else:
                        self._send(404, "{{}}")

            print(f"main: server is listening on http://127.0.0.1:{{port}}", flush=True)
            ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
        if behaviour == "nonewline":  # one endless line (FAKE_BYTES of it), then a normal one
            left = int(os.environ.get("FAKE_BYTES", str(64 << 20)))
            chunk = b"x" * 65536
            while left > 0:
                sys.stdout.buffer.write(chunk[:left])
                left -= len(chunk)
            sys.stdout.buffer.write(b"\\nafter the long line\\n")
            sys.stdout.flush()
            time.sleep(3600)
        if behaviour == "urandom":  # binary junk as fast as it can (FAKE_BYTES of it), then a marker
            left = int(os.environ.get("FAKE_BYTES", str(64 << 20)))
            with open("/dev/urandom", "rb") as junk:
                while left > 0:
                    sys.stdout.buffer.write(junk.read(min(left, 1 << 20)))
                    left -= 1 << 20
            sys.stdout.buffer.write(b"\\nend of junk\\n")
            sys.stdout.flush()
            time.sleep(3600)
        if behaviour == "sigkill":  # starts loading, then is killed with SIGKILL (here: by itself)
            print("load_tensors: loading model tensors, this can take a while...", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if behaviour == "exit":
            print(os.environ.get("FAKE_EXIT_LINE", "something went wrong"))
            sys.exit(int(os.environ.get("FAKE_EXIT_CODE", "1")))
        time.sleep(3600)
    """)
    return make_script(folder / name, body)
