"""The ``gguf`` package's enums (value types, tensor types, file types), without importing numpy.

``import gguf`` pulls in numpy and the whole reader (~0.2 s), which would make every CLI call and
``serve``'s time to ready slower. The enums live in ``gguf/constants.py``, which needs only the
standard library, so it is loaded on its own; if that ever fails, the package is imported normally.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType:
    name = "llama_launcher._gguf_constants"
    if name in sys.modules:
        return sys.modules[name]
    try:
        spec = importlib.util.find_spec("gguf")  # finds the package without running its __init__
        if spec is None or spec.origin is None:
            raise ImportError("gguf not found")
        path = Path(spec.origin).parent / "constants.py"
        cspec = importlib.util.spec_from_file_location(name, path)
        if cspec is None or cspec.loader is None:
            raise ImportError("gguf constants not loadable")
        module = importlib.util.module_from_spec(cspec)
        sys.modules[name] = module
        cspec.loader.exec_module(module)
        return module
    except Exception:
        sys.modules.pop(name, None)
        import gguf

        return gguf


_constants = _load()
GGUFValueType = _constants.GGUFValueType
GGMLQuantizationType = _constants.GGMLQuantizationType
LlamaFileType = _constants.LlamaFileType
