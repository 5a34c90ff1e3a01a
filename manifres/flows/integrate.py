r"""Integrate manifold ODEs :math:`x' = P_x F(x, t)` with a fixed step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._validation import check_int, check_real
from ..manifolds.base import Manifold, check_manifold
from .evaluation import is_time_dependent
from .schemes import get_stepper

__all__ = ["integrate"]


def integrate(
    manifold: Manifold,
    field: Callable,
    x0: Tensor,
    t1: float,
    steps: int,
    method: str = "euler",
    t0: float = 0.0,
    return_trajectory: bool = False,
    retraction: str | None = None,
) -> Tensor:
    r"""Integrate :math:`x' = P_x F(x, t)`, :math:`x(t_0) = x_0`, from ``t0`` to ``t1``.

    With :math:`h = (t_1 - t_0)/N` and :math:`t_k = t_0 + k h`, ``N = steps`` steps of the
    chosen one-step scheme :math:`x_{k+1} = \Phi_h(x_k, t_k)` (see
    :mod:`manifres.flows.schemes`):

    .. math:: \Phi_h^{\text{euler}}(x, t) = R_x\bigl(h\,P_x F(x, t)\bigr), \qquad
        \Phi_h^{\text{Lie}}(x, t) = \exp(\Theta_h(x, t)) \cdot x.

    Parameters
    ----------
    manifold : Manifold
    field : nn.Module or callable
        ``F(x)`` or ``F(x, t)`` (see :func:`~manifres.nn.is_time_dependent`), returning an
        ambient vector of the shape of ``x`` (projected here).
    x0 : Tensor, shape (..., *point_shape)
        Initial points (any batch shape).
    t1 : float
        Final time.
    steps : int
        Number of steps ``N >= 1``.
    method : {"euler", "rkmk2", "rkmk4", "cg2", "cf4"}
        The scheme; orders 1, 2, 4, 2, 4 (:data:`~manifres.flows.METHODS`). ``"euler"``
        works on every manifold (it is :class:`~manifres.nn.TangentResidualStack`), the
        others need a Lie-group action (:meth:`manifres.Manifold.lie_action`).
    t0 : float
        Initial time.
    return_trajectory : bool
        Return all points :math:`x_0, \dots, x_N` stacked along a new axis 0, shape
        ``(N + 1, ..., *point_shape)``.
    retraction : str, optional
        Retraction of ``"euler"`` (default: the manifold's first, usually ``"exp"``).

    Returns
    -------
    Tensor, shape (..., *point_shape) or (N + 1, ..., *point_shape)

    Raises
    ------
    UnknownChoiceError
        If ``method`` or ``retraction`` is unknown (the message lists the valid names), or the
        manifold has no group action for a Lie-group method.
    ParameterError
        If ``t0`` or ``t1`` is not a finite real number, or ``steps`` is not an int >= 1.
    ShapeError, DTypeError
        If ``x0`` does not end in ``manifold.point_shape`` (or is not float32/float64), or the
        field returns another shape or dtype.

    Notes
    -----
    Measured orders (float64, :func:`manifres.flows.problems.convergence_table`) agree with
    the theoretical ones within 0.2. The Lie-group schemes keep points on the manifold to
    rounding (the sphere schemes also renormalise). Gradients flow through every step
    (to ``x0`` and to the field's parameters).

    Examples
    --------
    >>> import torch, manifres
    >>> from manifres.flows import integrate
    >>> from manifres.nn import LinearField
    >>> S = manifres.Sphere(2)
    >>> A = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    >>> x0 = torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)  # a small circle about e_z
    >>> exact = torch.linalg.matrix_exp(A) @ x0
    >>> for m in ("euler", "rkmk4"):
    ...     err = (integrate(S, LinearField(A), x0, 1.0, 20, method=m) - exact).norm()
    ...     print(m, f"{err:.0e}")
    euler 1e-02
    rkmk4 2e-08
    """
    stepper = get_stepper(check_manifold(manifold, "integrate"), method, retraction)
    steps = check_int(steps, "steps", "integrate", minimum=1)
    t0 = check_real(t0, "t0", "integrate")
    t1 = check_real(t1, "t1", "integrate")
    manifold._check(x0, names=("x0",))
    h = (t1 - t0) / steps
    td = is_time_dependent(field)
    x = x0
    traj = [x0] if return_trajectory else None
    for k in range(steps):
        x = stepper(field, x, t0 + k * h, h, td)
        if traj is not None:
            traj.append(x)
    return torch.stack(traj) if traj is not None else x
