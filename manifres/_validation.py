"""Checks of user input, in one place: the dtype table, tensor metadata, numbers and choices.

Every check raises a named error of :mod:`manifres.errors` (never a bare ``ValueError`` or an
``assert``) whose message names the owner (the class or function the user called), the
argument and the value received. The checks read Python values and tensor metadata only; none
of them synchronises with a GPU.

Examples
--------
>>> check_int(3, "depth", "residual_mlp", minimum=0)
3
>>> check_real(float("nan"), "step", "TangentResidual")
Traceback (most recent call last):
...
manifres.errors.ParameterError: TangentResidual: step must be finite, got nan
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from .errors import DeviceError, DTypeError, ParameterError, UnknownChoiceError

__all__ = [
    "SUPPORTED_DTYPES",
    "POINT_ATOL",
    "check_floating",
    "full_precision",
    "check_real",
    "check_int",
    "check_choice",
]

#: The floating dtypes manifres computes in (float16/bfloat16 are rejected: the guarded
#: series and the membership tolerances are not designed for them).
SUPPORTED_DTYPES = (torch.float32, torch.float64)

#: Default absolute tolerance of the membership checks (on the manifold, tangent), per dtype.
POINT_ATOL = {torch.float32: 2e-5, torch.float64: 1e-12}

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def full_precision(fn: F) -> F:
    """Run ``fn`` with autocast switched off on the device of its first tensor argument.

    Under ``torch.autocast`` (e.g. ``dtype=torch.bfloat16``) the matrix products inside a
    manifold kernel would be rounded to 8 bits of mantissa, and some kernels (``lu``, ``svd``)
    have no reduced-precision CPU version at all; the kernels therefore compute in the dtype
    of their (float32/float64) inputs and return that dtype. Inputs that are themselves
    float16/bfloat16 still raise :class:`~manifres.errors.DTypeError` naming the argument.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = next((a for a in args if isinstance(a, Tensor)), None)
        if t is not None and torch.is_autocast_enabled(t.device.type):
            with torch.autocast(t.device.type, enabled=False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_floating(*tensors: Tensor, names: Sequence[str] | None = None) -> None:
    """Raise :class:`DTypeError` unless all tensors share one float32/float64 dtype, and
    :class:`DeviceError` unless they share one device.

    Examples
    --------
    >>> import torch
    >>> check_floating(torch.zeros(2), torch.zeros(2, dtype=torch.float64), names=("x", "v"))
    Traceback (most recent call last):
    ...
    manifres.errors.DTypeError: x has dtype torch.float32 but v has dtype torch.float64; ...
    """
    names = list(names) if names is not None else [f"input {i}" for i in range(len(tensors))]
    first = None
    for name, t in zip(names, tensors, strict=True):
        if not isinstance(t, Tensor):
            raise DTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in SUPPORTED_DTYPES:
            raise DTypeError(
                f"{name} has dtype {t.dtype}; manifres supports torch.float32 and torch.float64 "
                "(convert with .float() or .double())"
            )
        if first is None:
            first = (name, t)
            continue
        fname, ft = first
        if t.dtype != ft.dtype:
            raise DTypeError(
                f"{fname} has dtype {ft.dtype} but {name} has dtype {t.dtype}; "
                "convert one of them (manifres never promotes silently)"
            )
        if t.device != ft.device:
            raise DeviceError(f"{fname} is on {ft.device} but {name} is on {t.device}")


def _as_python(value: Any) -> Any:
    """A 0-dim tensor or numpy scalar as the Python number it holds (others unchanged)."""
    if isinstance(value, Tensor) and value.dim() == 0 and not value.dtype.is_complex:
        return value.detach().item()
    return value


def _bound(v: float) -> str:
    return str(v) if isinstance(v, numbers.Integral) else f"{v:g}"  # integers exactly


def _range_text(minimum, maximum, strict_min: bool, strict_max: bool) -> str:
    if minimum is not None and maximum is not None:
        lo = "(" if strict_min else "["
        hi = ")" if strict_max else "]"
        return f"in {lo}{_bound(minimum)}, {_bound(maximum)}{hi}"
    if minimum is not None:
        return f"{'>' if strict_min else '>='} {_bound(minimum)}"
    return f"{'<' if strict_max else '<='} {_bound(maximum)}"


def check_real(
    value: Any,
    name: str,
    owner: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
) -> float:
    """Return ``value`` as a finite Python float, or raise :class:`ParameterError`.

    Accepts Python and numpy real numbers and 0-dim real tensors (read once: a host sync on
    a GPU tensor); rejects ``bool``, strings, complex numbers and non-finite values.

    Parameters
    ----------
    value : object
    name, owner : str
        The argument's name and who received it (both appear in the message).
    minimum, maximum : float, optional
        Bounds, inclusive unless ``strict_min`` / ``strict_max``.

    Examples
    --------
    >>> import numpy as np
    >>> check_real(np.float32(0.5), "alpha", "DeGroot", minimum=0.0, maximum=1.0, strict_min=True)
    0.5
    """
    v = _as_python(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ParameterError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ParameterError(f"{owner}: {name} must be finite, got {v}")
    low_bad = minimum is not None and (v <= minimum if strict_min else v < minimum)
    high_bad = maximum is not None and (v >= maximum if strict_max else v > maximum)
    if low_bad or high_bad:
        raise ParameterError(
            f"{owner}: {name} must be {_range_text(minimum, maximum, strict_min, strict_max)}, got {v:g}"
        )
    return v


def check_int(
    value: Any, name: str, owner: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as a Python int, or raise :class:`ParameterError`.

    Accepts Python and numpy integers and 0-dim integer tensors; rejects ``bool`` and floats
    (even integral ones such as ``2.0``, which usually signal a mistake).

    Examples
    --------
    >>> import numpy as np
    >>> check_int(np.int64(2), "n", "Sphere", minimum=1)
    2
    """
    v = _as_python(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ParameterError(f"{owner}: {name} must be an integer, got {type(value).__name__} {value!r}")
    v = int(v)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        where = _range_text(minimum, maximum, False, False)
        raise ParameterError(f"{owner}: {name} must be {where}, got {v}")
    return v


def check_choice(value: T, choices: Iterable[T], name: str, owner: str) -> T:
    """Return ``value`` if it is one of ``choices``, else raise :class:`UnknownChoiceError`
    listing the valid names.

    Examples
    --------
    >>> check_choice("sym", (None, "sym", "rw"), "normalization", "laplacian")
    'sym'
    """
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable value
        ok = False
    if not ok:
        valid = ", ".join(repr(c) for c in choices)
        raise UnknownChoiceError(f"{owner}: unknown {name} {value!r}; valid values: {valid}")
    return value
