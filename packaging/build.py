"""Build the frozen app for this platform, smoke-test it, and (optionally) its installer.

    python packaging/build.py [--dist DIR] [--bundle-server PATH] [--installer] [--no-smoke]

Steps: render icons from resources/icons/app.svg; write the Windows version resource from the
package version; run PyInstaller on packaging/llama_launcher.spec; run the frozen app with
--smoke-test (offscreen: builds the main window, probes llama-server, exits 0); with --installer,
make the .dmg (macOS, hdiutil) or the Inno Setup installer (Windows, iscc).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gui"))
from llama_launcher import __version__  # noqa: E402

APP_NAME = "Llama Launcher"


def version_tuple() -> tuple[int, int, int, int]:
    parts = [int(p) for p in __version__.split(".")[:4] if p.isdigit()]
    return tuple((parts + [0, 0, 0, 0])[:4])  # type: ignore[return-value]


def write_version_info(path: Path) -> None:
    v = version_tuple()
    dotted = ".".join(str(x) for x in v)
    path.write_text(f"""# UTF-8
VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004, fileType=0x1, subtype=0x0,
                    date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
      StringStruct('CompanyName', 'Llama Launcher contributors'),
      StringStruct('FileDescription', '{APP_NAME}'),
      StringStruct('FileVersion', '{dotted}'),
      StringStruct('InternalName', 'llama-launcher'),
      StringStruct('OriginalFilename', 'llama-launcher.exe'),
      StringStruct('ProductName', '{APP_NAME}'),
      StringStruct('ProductVersion', '{__version__}')])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
""", encoding="utf-8")


def frozen_executable(dist: Path) -> Path:
    if sys.platform == "darwin":
        return dist / f"{APP_NAME}.app" / "Contents" / "MacOS" / "llama-launcher"
    return dist / "llama-launcher" / ("llama-launcher.exe" if sys.platform == "win32" else "llama-launcher")


def smoke(exe: Path) -> str:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([str(exe), "--smoke-test"], capture_output=True, text=True, env=env, timeout=300)
    print(out.stdout + out.stderr)
    if out.returncode != 0 or "main window built" not in out.stdout:
        raise SystemExit(f"smoke test of the frozen app failed (exit {out.returncode})")
    return out.stdout


def make_dmg(dist: Path) -> Path:
    dmg = dist / f"LlamaLauncher-{__version__}.dmg"
    staging = dist / "dmg"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shutil.copytree(dist / f"{APP_NAME}.app", staging / f"{APP_NAME}.app", symlinks=True)
    os.symlink("/Applications", staging / "Applications")
    dmg.unlink(missing_ok=True)
    subprocess.run(["hdiutil", "create", "-volname", APP_NAME, "-srcfolder", str(staging), "-ov", "-format", "UDZO",
                    str(dmg)], check=True)
    return dmg


def make_windows_installer(dist: Path) -> Path:
    iscc = shutil.which("iscc") or r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe"
    subprocess.run([iscc, f"/DAppVersion={__version__}", f"/DSourceDir={dist / 'llama-launcher'}",
                    f"/DIconFile={ROOT / 'packaging' / 'build' / 'icons' / 'app.ico'}", f"/O{dist}",
                    str(ROOT / "packaging" / "windows" / "installer.iss")], check=True)
    return dist / f"LlamaLauncher-{__version__}-setup.exe"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--work", default=str(ROOT / "packaging" / "build"))
    ap.add_argument("--bundle-server", help="a llama-server build to ship inside the app")
    ap.add_argument("--installer", action="store_true", help="also make the .dmg / Windows installer")
    ap.add_argument("--no-smoke", action="store_true")
    args = ap.parse_args()
    dist, work = Path(args.dist).resolve(), Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "packaging" / "make_icons.py"), str(work / "icons")], check=True)
    write_version_info(work / "version_info.txt")
    env = dict(os.environ, LLAMA_LAUNCHER_BUILD_DIR=str(work))
    if args.bundle_server:
        env["LLAMA_LAUNCHER_BUNDLE_SERVER"] = str(Path(args.bundle_server).resolve())
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", str(dist),
                    "--workpath", str(work / "pyinstaller"), str(ROOT / "packaging" / "llama_launcher.spec")],
                   check=True, env=env)
    exe = frozen_executable(dist)
    print(f"built {exe}")
    if not args.no_smoke:
        smoke(exe)
    if args.installer:
        if sys.platform == "darwin":
            print(f"installer: {make_dmg(dist)}")
        elif sys.platform == "win32":
            print(f"installer: {make_windows_installer(dist)}")
        else:
            print("no installer format on Linux: ship dist/llama-launcher/ as an archive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
