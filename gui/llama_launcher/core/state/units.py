"""How sizes are written, decided once: files in decimal units, memory in binary units, always labelled.

The window once wrote "241 MB" for the demo model's 253,113,024 bytes (MiB shown under the name MB)
while the README said 253 MB, and a 20-byte file read "0 MB". The convention now:

- **File sizes and downloads are decimal** (kB, MB, GB: powers of 1000), as the README, Hugging Face,
  GitHub's release pages and macOS Finder write them, so the number a person reads here is the one
  they see where they downloaded the file: the demo model is "253 MB" everywhere.
- **Memory is binary** (MiB, GiB: powers of 1024), as llama.cpp's own log, ``--list-devices``,
  nvidia-smi and the operating systems' memory figures report it.
- The unit is always written, so the two never meet under one name; below 1000 bytes a file's size
  is its byte count ("20 bytes"), never a rounded zero.

Three significant digits are shown (253 MB, 25.3 MB, 2.53 GB): enough to tell two quants apart.
"""

from __future__ import annotations

_DECIMAL = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def _three_digits(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def file_size(n: int | float) -> str:
    """A file's (or a download's) size in decimal units: '20 bytes', '1.50 kB', '253 MB', '2.53 GB'."""
    n = max(int(n), 0)
    if n < 1000:
        return "1 byte" if n == 1 else f"{n} bytes"
    for i, (unit, scale) in enumerate(_DECIMAL):
        if n >= scale:
            text = _three_digits(n / scale)
            if text == "1,000" and i > 0:  # 999.6 MB rounds up: say 1.00 GB
                return f"1.00 {_DECIMAL[i - 1][0]}"
            return f"{text} {unit}"
    raise AssertionError("unreachable: n >= 1000 matches kB")


def memory_mib(mib: int | float) -> str:
    """An amount of memory given in MiB, in binary units: '512 MiB', '1.5 GiB', '15.6 GiB'."""
    mib = max(float(mib), 0.0)
    if mib < 1024:
        return f"{mib:,.0f} MiB"
    return f"{mib / 1024:,.1f} GiB"
