"""Shared metadata for benchmark results: commit, machine, torch threads, time, and the JSON/markdown writer.

Every ``benchmarks/<name>.json`` should say at which commit, on what machine and with which settings it was
measured. Scripts that import this module get it in one call::

    from _bench_meta import bench_meta, write_results
    result = {**bench_meta(device), "benchmark": "core", "command": "...", "settings": vars(args), ...}
    write_results(REPO / "benchmarks" / "core", result, markdown_lines)

``scripts/bench/make_results.py`` reads the keys written here (``commit``, ``machine``, ``date``, ``settings``,
``command``, ``tables``, ``figures``) and also copes with older JSON files that spell them differently.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from spikegen_core.utils import atomic_write

REPO = Path(__file__).resolve().parents[2]


def commit_hash(repo: Path = REPO) -> str:
    """``git rev-parse HEAD`` plus ``-dirty`` when the tree has uncommitted changes (read-only git calls)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What a reader needs to compare timings: CPU model and cores, GPU (when used), threads, versions."""
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        # the machine may be shared: a high load makes wall times pessimistic
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def machine_summary(machine: dict[str, Any]) -> str:
    """One line: ``NVIDIA H200`` or ``Intel Xeon (2 cores, 1 torch thread)``."""
    if machine.get("gpu"):
        return f"{machine['gpu']} (GPU), CPU {machine.get('cpu', '?')}"
    threads = machine.get("torch_threads")
    extra = f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else ""
    return f"{machine.get('cpu', '?')} ({machine.get('cpu_count', '?')} cores{extra}), no GPU"


def bench_meta(device: str = "cpu") -> dict[str, Any]:
    """``{"commit", "machine", "date"}`` for the top of a benchmark JSON."""
    return {
        "commit": commit_hash(),
        "machine": machine_info(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def jsonable(value: Any) -> Any:
    """Paths and tuples in settings → JSON types."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def markdown_table(columns: list[str], rows: list[list[Any]], fmt: Any = str) -> list[str]:
    """A GitHub markdown table (text columns left-aligned, numeric ones right-aligned)."""
    def is_numeric(i: int) -> bool:
        return bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)

    align = ["---:" if is_numeric(i) else "---" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join("—" if v is None else fmt(v) for v in row) + " |" for row in rows]
    return lines


def settings_line(settings: dict[str, Any]) -> str:
    """``k=v; k=v`` of every setting, for the markdown next to the JSON."""
    return "; ".join(f"{k}={json.dumps(jsonable(v), ensure_ascii=False)}" for k, v in settings.items())


def append_history(path: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Append ``row`` to the JSON-lines file ``path``; every row in it, the newest per ``step``, by step."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    newest = {}
    for line in path.read_text().splitlines():
        h = json.loads(line)
        newest[h["step"]] = h
    return sorted(newest.values(), key=lambda h: h["step"])


def write_results(stem: Path, result: dict[str, Any], markdown: list[str]) -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` atomically (a crash never leaves half a file)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(stem.with_suffix(".json"), "w") as f:
        json.dump(jsonable(result), f, indent=1)
    with atomic_write(stem.with_suffix(".md"), "w") as f:
        f.write("\n".join(markdown) + "\n")
