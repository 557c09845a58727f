"""What the model benchmarks share: the ResNetAE settings they measure and memory readings."""

from __future__ import annotations

from pathlib import Path

#: ResNetAE settings measured by bench_torch.py and bench_keras.py: spec overrides and batch size.
SETTINGS = {
    "default": {"overrides": {}, "batch": 2},
    "small": {
        "overrides": {"n_levels": 3, "n_residual_blocks": 2, "input_shape": [64, 64, 3]},
        "batch": 16,
    },
}


def status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB, e.g. VmRSS or VmHWM."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Reset this process's resident-set high-water mark to its current size."""
    Path("/proc/self/clear_refs").write_text("5")
