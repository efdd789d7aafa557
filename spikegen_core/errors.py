"""Exceptions of our own, so callers can catch SpikeGen failures apart from library errors.

Every message names the file (when there is one), the problem, and what to try.
"""

from __future__ import annotations


class SpikeGenError(Exception):
    """Base class of every error SpikeGen raises on purpose."""


class SpikeFileError(SpikeGenError, ValueError):
    """A spike file (``.dat``/``.npz``/``.npy``/sidecar) cannot be read as asked."""


class SceneFormatError(SpikeGenError, ValueError):
    """A scene folder / ``transforms.json`` does not follow the documented format."""


class CheckpointError(SpikeGenError, RuntimeError):
    """A checkpoint is missing, corrupt, truncated, or does not fit the model."""


class InputMismatchError(SpikeGenError, ValueError):
    """Inputs that must agree (spike vs RGB resolution, frame counts, ...) do not."""


class NonFiniteLossError(SpikeGenError, FloatingPointError):
    """A loss term became NaN/Inf; the message names the step and the term."""


class ImageFileError(SpikeGenError, ValueError):
    """An image file is missing, unreadable, or has a shape we cannot use."""


class OptionError(SpikeGenError, ValueError):
    """A command-line option has a value it cannot take (the message names the flag, the value and the range)."""
