"""The error layer of the ``spikegen`` and ``spikegen-process-data`` commands.

- :func:`run_cli`: a user error (our :class:`~spikegen_core.errors.SpikeGenError` family, or a file the system
  cannot open) prints ONE line, ``<prog>: error: <message>``, and exits 1; ``--debug`` anywhere on the
  command line, or ``SPIKEGEN_DEBUG=1``, lets the traceback through instead. Anything else is a bug and keeps
  its traceback.
- :func:`check_options`: every numeric option checked against :data:`RULES` (by option name, so one table
  covers every command) right after tyro parsed it, before any file is read or written.
- :func:`checked`: wraps a command function so its options are checked before it runs (tyro sees the same
  signature, defaults and docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from spikegen_core.errors import OptionError, SpikeGenError

DEBUG_ENV = "SPIKEGEN_DEBUG"
DEBUG_FLAG = "--debug"


# -- numeric options -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """What an option accepts: ``low``/``high`` bounds (inclusive unless ``open_low``), integer or not."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    what: str = ""

    def accepts(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return "finite"


_POSITIVE = Rule(0, open_low=True)
_AT_LEAST_1 = Rule(1)
_NON_NEGATIVE = Rule(0)
_FRACTION = Rule(0, 1)
_SIZE = Rule(1, 1 << 16, what="pixels")  # no spike camera is wider than 65,536 pixels

RULES: dict[str, Rule] = {
    **dict.fromkeys(
        ("threshold", "clock_hz", "fps", "play_fps", "gain", "lr", "vae_lr", "rgb_fps"), _POSITIVE
    ),
    **dict.fromkeys(("height", "width", "size", "image_size"), _SIZE),
    **dict.fromkeys(
        (
            "window",
            "short_window",
            "luma_window",
            "spike_window",
            "batch_size",
            "steps",
            "num_views",
            "downscale",
            "frames",
            "n",
            "num_train",
            "ticks",
            "subframes",
            "supersample",
            "upsample",
            "ckpt_every",
            "log_every",
            "diffusion_repeats",
            "max_num_features",
            "sequential_overlap",
            "rgb_only_every",
            "threads",
            "stop",
        ),
        _AT_LEAST_1,
    ),  # fmt: skip
    **dict.fromkeys(
        (
            "center",
            "start",
            "seed",
            "eval_every",
            "holdout",
            "num_test",
            "seed_points",
            "warmup_steps",
            "vae_steps",
            "weight_decay",
            "grad_clip",
            "jitter_px",
            "motion",
            "motion_scale",
            "rgb_start_s",
            "deblur_gamma",
            "reconstruct_gamma",
            "diffusion_weight",
            "image_weight",
            "latent_weight",
            "spike_weight",
            "vae_kl_weight",
            "temperature",
        ),
        _NON_NEGATIVE,
    ),  # fmt: skip
    "ema_decay": Rule(0, 1),
    "endpoint_prob": _FRACTION,
    "min_registered_fraction": Rule(0, 1, open_low=True),
    "num_threads": Rule(-1),  # -1: all cores
    "motion_range": _NON_NEGATIVE,
    "threshold_range": _POSITIVE,
    "spike_frames": _AT_LEAST_1,
}
"""Bounds by option name; a numeric option not listed here must still be finite."""

_HINTS = {
    "window": "spike frames per image, e.g. 41",
    "threshold": "the camera's spike threshold θ, e.g. 2.0",
    "fps": "output frames per second, e.g. 1000",
    "height": "frame height in pixels",
    "width": "frame width in pixels",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _fail_option(name: str, value: Any, rule: Rule) -> NoReturn:
    hint = _HINTS.get(name, rule.what)
    kind = "an integer" if isinstance(value, int) else "a number"
    raise OptionError(
        f"{_flag(name)} {value!r}: must be {kind} {rule.describe()}{f' ({hint})' if hint else ''}; "
        f"pass a value {rule.describe()} or leave the option out for its default"
    )


def _check_value(name: str, value: Any) -> None:
    rule = RULES.get(name, Rule())
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not rule.accepts(float(value)):
            _fail_option(name, value, rule)
    elif isinstance(value, tuple) and value and all(isinstance(v, int | float) for v in value):
        for v in value:
            if not rule.accepts(float(v)):
                _fail_option(name, value, rule)
        if len(value) == 2 and value[0] > value[1]:
            raise OptionError(
                f"{_flag(name)} {value!r}: a range must be (low, high) with low <= high; swap them"
            )


def check_options(options: Mapping[str, Any]) -> None:
    """Check every numeric option (and the numeric fields of config dataclasses) against :data:`RULES`.

    Raises :class:`OptionError` naming the flag, the value and what it must be.
    """
    for name, value in options.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_options({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        else:
            _check_value(name, value)


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with :func:`check_options` run on its arguments first; tyro reads the same signature and help."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        import inspect

        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        check_options(bound.arguments)
        return fn(*args, **kwargs)

    # Resolved annotations: tyro evaluates string annotations in the wrapper's module otherwise.
    command.__annotations__ = typing.get_type_hints(fn, include_extras=True)
    return command


# -- one line per user error ---------------------------------------------------------------------------------
def debug_requested(argv: list[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _user_error(err: BaseException) -> str | None:
    """The one-line message of a user error, None for a bug (which keeps its traceback)."""
    if isinstance(err, SpikeGenError):
        return _one_line(str(err))
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        # A path the system refuses (missing, a folder, no permission, disk full): the user's to fix.
        return _one_line(f"{err.filename}: {err.strerror}; check the path and its permissions")
    return None


def run_cli(prog: str, main: Callable[[list[str]], Any], args: Sequence[str] | None = None) -> None:
    """Run ``main(args)`` (``args``: the command line without the program, default ``sys.argv[1:]``, with
    ``--debug`` taken out) under the error layer described in the module docstring."""
    args = sys.argv[1:] if args is None else list(args)
    debug = debug_requested(args)
    try:
        main([a for a in args if a != DEBUG_FLAG])
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        message = _user_error(err)
        if debug or message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(1)
