"""Shared parts of the Riemannian optimizers: parameter-group checks and vector transport."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from ..errors import ManifoldError, ParameterError, UnknownChoiceError
from ..manifolds.base import Manifold

__all__ = [
    "CheckedGroupsMixin",
    "TRANSPORTS",
    "check_number",
    "check_group",
    "vector_transport",
    "batch_inner",
]

#: Names of the vector transports that move optimizer state to the new point.
TRANSPORTS = ("projection", "parallel")


def check_number(
    owner: str, name: str, value: object, low: float, high: float | None = None, open_high: bool = False
) -> None:
    """Raise :class:`ParameterError` unless ``value`` is a finite real in ``[low, high]``
    (``[low, high)`` when ``open_high``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ParameterError(f"{owner}: {name} must be finite, got {value}")
    too_high = high is not None and (value >= high if open_high else value > high)
    if value < low or too_high:
        where = f"in [{low}, {high}{')' if open_high else ']'}" if high is not None else f">= {low}"
        raise ParameterError(f"{owner}: {name} must be {where}, got {value}")


def check_group(owner: str, group: dict) -> None:
    """Check the manifold keys of a parameter group and that its parameters lie on the manifold.

    Reads the parameter values once (a host-device synchronisation on GPUs) when a group is
    added, never in :meth:`step`.
    """
    manifold = group["manifold"]
    if group["transport"] not in TRANSPORTS:
        raise UnknownChoiceError(
            f"{owner}: unknown transport {group['transport']!r}; valid names: {', '.join(TRANSPORTS)}"
        )
    stabilize = group["stabilize"]
    if stabilize is not None and (
        isinstance(stabilize, bool) or not isinstance(stabilize, int) or stabilize < 1
    ):
        raise ParameterError(f"{owner}: stabilize must be None or an integer >= 1, got {stabilize!r}")
    if manifold is None:
        return
    if not isinstance(manifold, Manifold):
        raise TypeError(
            f"{owner}: a group's manifold must be a manifres Manifold or None, got {type(manifold).__name__}"
        )
    manifold.retraction(group["retraction"])  # raises UnknownChoiceError with the valid names
    for i, p in enumerate(group["params"]):
        try:
            manifold.check_point(p.detach(), name=f"param[{i}]")
        except ManifoldError as e:
            raise ManifoldError(
                f"{owner}: {e}. Initialise manifold parameters on the manifold, e.g. with "
                f"manifold.random(...) or manifold.proj_point(...)"
            ) from None


def vector_transport(manifold: Manifold, method: str, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """Move the tangent vector ``v`` at ``x`` to the tangent space at ``y``."""
    if method == "projection":
        return manifold.proj(y, v)
    return manifold.transport(x, y, v)


def batch_inner(manifold: Manifold, x: Tensor, u: Tensor) -> Tensor:
    """``<u, u>_x`` with singleton manifold axes kept, shape ``(..., 1, ..., 1)``."""
    sq = manifold.inner(x, u, u)
    return sq.reshape(sq.shape + (1,) * manifold.ndim)


class CheckedGroupsMixin:
    """Checks every parameter group as it is added; a rejected group leaves the optimizer as it was.

    The optimizer defines ``_check(group)``, which raises a named error.
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (checked: numbers, names, and that its parameters are on its manifold)."""
        super().add_param_group(param_group)  # type: ignore[misc]
        try:
            self._check(self.param_groups[-1])  # type: ignore[attr-defined]
        except Exception:
            self.param_groups.pop()  # type: ignore[attr-defined]
            raise
