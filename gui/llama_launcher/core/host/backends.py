"""The compute backends, spelt once: what a GPU is driven by, what a build has, what the CLI's
``--backend`` takes.

A value is the lower-case name the command line and the stored records use (``cuda``); ``str()``
and ``label`` give the name llama.cpp and people write (``CUDA``, ``ROCm``). Reading is forgiving
about case and llama.cpp's own aliases (``--list-devices`` says ``MTL`` for Metal, older builds
``HIP`` for ROCm), so a hardware file or a device list written either way reads the same.
"""

from __future__ import annotations

import enum

_LABELS = {"cpu": "CPU", "cuda": "CUDA", "rocm": "ROCm", "vulkan": "Vulkan", "metal": "Metal", "sycl": "SYCL",
           "cann": "CANN", "opencl": "OpenCL", "blas": "BLAS", "other": "other"}
_ALIASES = {"hip": "rocm", "mtl": "metal"}


class Backend(str, enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"
    ROCM = "rocm"
    VULKAN = "vulkan"
    METAL = "metal"
    SYCL = "sycl"
    CANN = "cann"
    OPENCL = "opencl"
    BLAS = "blas"
    OTHER = "other"  # a device kind this launcher does not know (llama.cpp keeps adding them)

    @classmethod
    def _missing_(cls, value: object) -> Backend | None:
        if isinstance(value, str):
            low = value.strip().lower()
            low = _ALIASES.get(low, low)
            for member in cls:
                if member.value == low:
                    return member
        return None

    @property
    def label(self) -> str:
        return _LABELS[self.value]

    def __str__(self) -> str:
        return self.label


# GPUs that have memory of their own (what the planner's GPU branch and the idle-GPU notice count)
DISCRETE = frozenset({Backend.CUDA, Backend.ROCM, Backend.VULKAN, Backend.SYCL, Backend.CANN})
