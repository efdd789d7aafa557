"""Shared fixtures: where the shared real data lives, and a small-thread torch for 2-core CI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# The tests mirror the packages in folders, and share helpers by module name (``from test_dataparser import
# write_tiny_scene``): every test folder goes on sys.path, here and only here.
for _folder in sorted({p.parent for p in Path(__file__).parent.rglob("test_*.py")}):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout (CI copies it there), or ``$SPIKEGEN_SHARED_DATA``."""
    env = os.environ.get("SPIKEGEN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared real data not found at {root} (set SPIKEGEN_SHARED_DATA to its folder)")
    return root


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op torch thread: on a shared 2-core machine two OpenMP threads spin-wait on each other (a
    training step ran ~10x slower); subprocesses (ns-train, torchrun) keep their own settings."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
