"""Evaluating vector fields :math:`F(x)` or :math:`F(x, t)`: the calling convention of every
integrator and residual layer.

A field is any callable (usually an ``nn.Module``) returning an ambient vector of the shape of
its input; it is time dependent when it takes a second positional argument (or declares
``time_dependent = True``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import DTypeError, ShapeError

_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)

__all__ = ["is_time_dependent", "evaluate_field"]


def is_time_dependent(field: Callable) -> bool:
    """Whether ``field`` is called as ``field(x, t)`` (True) or ``field(x)`` (False).

    The attribute ``field.time_dependent`` wins when present; otherwise the signature of
    ``field.forward`` (modules) or of ``field`` (other callables) is inspected: a second
    positional parameter (with or without a default) means time dependent. Signatures that
    cannot be inspected, or that take ``*args``, count as autonomous (``field(x)``).

    Parameters
    ----------
    field : callable
        A vector field (an ``nn.Module`` or any callable).

    Returns
    -------
    bool

    Examples
    --------
    >>> is_time_dependent(lambda x: x), is_time_dependent(lambda x, t=0.0: x)
    (False, True)
    """
    flag = getattr(field, "time_dependent", None)
    if flag is not None:
        return bool(flag)
    fn = field.forward if isinstance(field, nn.Module) else field
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2


def evaluate_field(
    field: Callable,
    x: Tensor,
    t: float | Tensor | None = None,
    time_dependent: bool | None = None,
) -> Tensor:
    """Evaluate ``field`` at ``x`` (and ``t``) and check that the output has the shape of ``x``.

    Parameters
    ----------
    field : callable
        The vector field.
    x : Tensor, shape (..., *point_shape)
        Points.
    t : float or Tensor or None
        Time, passed only to time-dependent fields (``None`` means 0).
    time_dependent : bool or None
        Skip the detection of :func:`is_time_dependent` (layers cache it).

    Returns
    -------
    Tensor, shape (..., *point_shape)
        The ambient field value (not projected).

    Raises
    ------
    ShapeError
        If the output is not a tensor of shape ``x.shape``.
    DTypeError
        If the output dtype differs from that of ``x`` (except a float16/bfloat16 output under
        ``torch.autocast``, which is cast to ``x.dtype``).

    Examples
    --------
    >>> import torch
    >>> evaluate_field(lambda x, t: t * x, torch.ones(2), 3.0)
    tensor([3., 3.])
    """
    td = is_time_dependent(field) if time_dependent is None else time_dependent
    v = field(x, 0.0 if t is None else t) if td else field(x)
    if not isinstance(v, Tensor) or v.shape != x.shape:
        got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ShapeError(
            f"the field {type(field).__name__} returned {got} for an input of shape "
            f"{tuple(x.shape)}; a vector field must return a tensor of the input's shape"
        )
    if v.dtype != x.dtype and v.dtype in _AUTOCAST_DTYPES and torch.is_autocast_enabled(v.device.type):
        v = v.to(x.dtype)  # an autocast field (bf16 matmuls): the step itself runs in x.dtype
    if v.dtype != x.dtype:
        raise DTypeError(
            f"the field {type(field).__name__} returned dtype {v.dtype} for an input of dtype "
            f"{x.dtype}; convert the field (e.g. field.double()) or the input"
        )
    return v
