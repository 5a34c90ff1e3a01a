"""Deprecated layer names (one release): every scheme is a ``method`` of the tangent layers.

``FlowStep(manifold, field, step, method)`` is ``TangentResidual(manifold, field, step,
method=method)``; ``FlowStack`` is ``TangentResidualStack(..., method=...)``; ``RKMKLayer(...,
order=4)`` is ``TangentResidual(..., method="rkmk4")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from .._deprecation import warn_renamed
from ..errors import UnknownChoiceError
from ..manifolds.base import Manifold
from ..nn.tangent import TangentResidual, TangentResidualStack

__all__ = ["FlowStep", "RKMKLayer", "FlowStack"]


def FlowStep(  # noqa: N802 - a deprecated class name
    manifold: Manifold,
    field: Callable,
    step: float | Tensor = 0.1,
    method: str = "rkmk4",
    retraction: str | None = None,
    learn_step: bool = False,
) -> TangentResidual:
    """Deprecated: ``TangentResidual(manifold, field, step, method=method)``."""
    warn_renamed("manifres.flows", "FlowStep", "manifres.nn.TangentResidual(..., method=...)")
    return TangentResidual(manifold, field, step, learn_step, retraction, method)


def RKMKLayer(  # noqa: N802 - a deprecated class name
    manifold: Manifold, field: Callable, step: float = 0.1, order: int = 4, learn_step: bool = False
) -> TangentResidual:
    """Deprecated: ``TangentResidual(manifold, field, step, method=f"rkmk{order}")``."""
    warn_renamed("manifres.flows", "RKMKLayer", "manifres.nn.TangentResidual(..., method='rkmk4')")
    if order not in (2, 4):
        raise UnknownChoiceError(f"RKMKLayer: unknown order {order!r}; valid orders: 2, 4")
    return TangentResidual(manifold, field, step, learn_step, method=f"rkmk{order}")


def FlowStack(  # noqa: N802 - a deprecated class name
    manifold: Manifold,
    fields: nn.Module | Sequence[nn.Module],
    step: float,
    method: str = "rkmk4",
    retraction: str | None = None,
    depth: int | None = None,
    return_trajectory: bool = False,
    learn_step: bool = False,
    t0: float = 0.0,
) -> TangentResidualStack:
    """Deprecated: ``TangentResidualStack(manifold, fields, step, method=method, ...)``."""
    warn_renamed("manifres.flows", "FlowStack", "manifres.nn.TangentResidualStack(..., method=...)")
    return TangentResidualStack(
        manifold, fields, step, retraction, depth, return_trajectory, learn_step, t0, method
    )
