r"""Policy residual: a baseline map plus a linear feedback correction whose gain is the step.

A discrete-time system :math:`x_{t+1} = f(x_t) + B u_t` under the proportional policy
:math:`u_t = -k K (x_t - x^*)` is the residual layer :math:`x \mapsto f(x) + k F(x)` with the
branch :math:`F(x) = -BK(x - x^*)` and the gain :math:`k` as its step: the residual-step
protocol's step sweep (:func:`~manifres.stability.scale_sweep`) is a gain sweep, and
:func:`~manifres.stability.gain_margin` gives the gains that keep it stable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._deprecation import UNSET
from .._validation import check_floating
from ..errors import ShapeError
from .protocol import resolve_step, step_value
from .residual import _register_step

__all__ = ["PolicyResidual"]


def _as_matrix(t: Tensor, name: str, column: bool) -> Tensor:
    """A 1-D ``B`` is a column ``(n, 1)``, a 1-D ``K`` a row ``(1, n)``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"PolicyResidual: {name} must be a Tensor, got {type(t).__name__}")
    if t.dim() == 1:
        t = t[:, None] if column else t[None, :]
    if t.dim() != 2:
        raise ShapeError(f"PolicyResidual: {name} must be 1-D or 2-D, got shape {tuple(t.shape)}")
    return t.detach().clone()


class _MatrixMap(nn.Module):
    """``x -> x A^T`` for a fixed matrix ``A`` (a buffer)."""

    def __init__(self, matrix: Tensor) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.matrix.mT


class _FunctionMap(nn.Module):
    """A plain callable as a module (it holds no parameters of its own)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


class _Feedback(nn.Module):
    r"""The policy branch :math:`F(x) = -BK(x - x^*)`."""

    def __init__(self, b: Tensor, k: Tensor, x_star: Tensor) -> None:
        super().__init__()
        self.register_buffer("B", b)
        self.register_buffer("K", k)
        self.register_buffer("x_star", x_star)

    def forward(self, x: Tensor) -> Tensor:
        return -((x - self.x_star) @ self.K.mT) @ self.B.mT


class PolicyResidual(nn.Module):
    r"""Closed loop of a baseline map under proportional feedback, with the gain as the step.

    .. math:: y = f(x) - k\,B K (x - x^*) = f(x) + k\,F(x), \qquad F(x) = -BK(x - x^*)

    Parameters
    ----------
    baseline : nn.Module, callable or Tensor
        :math:`f`, on ``(..., n)`` states; a square matrix ``A`` means :math:`f(x) = Ax`.
    B : Tensor, shape (n, m) or (n,)
        How the ``m`` controls enter the state (a 1-D ``B`` is one control, ``(n, 1)``).
    K : Tensor, shape (m, n) or (n,)
        The policy direction (a 1-D ``K`` is ``(1, n)``).
    step : float, Tensor or nn.Parameter
        The gain :math:`k` (a number, default 0: the baseline itself).
    x_star : Tensor, shape (n,), optional
        The target :math:`x^*` (default 0), normally a fixed point of :math:`f`.
    learn_step : bool
        Make :math:`k` an ``nn.Parameter``.

    Attributes
    ----------
    baseline : nn.Module
        :math:`f` (a matrix or a function is wrapped in a module).
    branch : nn.Module
        :math:`F`, holding the buffers ``B``, ``K`` and ``x_star``.
    step : Tensor
        :math:`k`.
    manifold : None
    sample_ndim : int
        1.

    Shapes:
        - **input:** ``(..., n)``
        - **output:** ``(..., n)``

    Raises
    ------
    ShapeError
        If ``B``, ``K``, ``x_star`` or a matrix baseline do not fit together.
    DTypeError
        If ``B``, ``K`` (or ``x_star``, a matrix baseline) are not float32/float64 of one dtype.
    ParameterError
        If ``step`` is not a finite number.

    Notes
    -----
    The layer's Jacobian is :math:`J_f(x) - kBK`: at a fixed point :math:`x^*` of :math:`f`
    the closed loop is locally stable exactly when its spectral radius is below 1, which
    :func:`~manifres.stability.gain_margin` solves for all :math:`k \ge 0` at once.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[1.1, 0.0], [0.0, 0.5]], dtype=torch.float64)
    >>> layer = PolicyResidual(A, B=torch.tensor([1.0, 0.0], dtype=torch.float64),
    ...                        K=torch.tensor([1.0, 0.0], dtype=torch.float64), step=0.3)
    >>> layer(torch.tensor([1.0, 1.0], dtype=torch.float64))
    tensor([0.8000, 0.5000], dtype=torch.float64)
    """

    manifold = None
    sample_ndim = 1

    def __init__(
        self,
        baseline: nn.Module | Callable[[Tensor], Tensor] | Tensor,
        B: Tensor,
        K: Tensor,
        step: float | Tensor = UNSET,
        *,
        x_star: Tensor | None = None,
        learn_step: bool = UNSET,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        b = _as_matrix(B, "B", column=True)
        k = _as_matrix(K, "K", column=False)
        check_floating(b, k, names=("B", "K"))
        n, m = b.shape
        if tuple(k.shape) != (m, n):
            raise ShapeError(
                f"{name}: K must have shape (m, n) = ({m}, {n}) to match B {tuple(b.shape)}, "
                f"got {tuple(k.shape)}"
            )
        x_star = torch.zeros(n, dtype=b.dtype) if x_star is None else x_star.detach().clone()
        check_floating(b, x_star, names=("B", "x_star"))
        if tuple(x_star.shape) != (n,):
            raise ShapeError(f"{name}: x_star must have shape ({n},), got {tuple(x_star.shape)}")
        if isinstance(baseline, Tensor):
            check_floating(b, baseline, names=("B", "baseline"))
            if tuple(baseline.shape) != (n, n):
                raise ShapeError(
                    f"{name}: a matrix baseline must have shape ({n}, {n}), got {tuple(baseline.shape)}"
                )
            baseline = _MatrixMap(baseline)
        elif not isinstance(baseline, nn.Module):
            if not callable(baseline):
                raise TypeError(
                    f"{name}: baseline must be a module, a callable or a matrix, "
                    f"got {type(baseline).__name__}"
                )
            baseline = _FunctionMap(baseline)
        step = 0.0 if step is UNSET else step
        learn_step = False if learn_step is UNSET else bool(learn_step)
        _register_step(self, resolve_step(step, name, scalar=True), learn_step, name)
        self.baseline = baseline
        self.branch = _Feedback(b, k, x_star)

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        """The layer with the gain given explicitly (differentiable in ``step``)."""
        n = self.branch.B.shape[0]
        if x.dim() < 1 or x.shape[-1] != n:
            raise ShapeError(f"{type(self).__name__}: input must have shape (..., {n}), got {tuple(x.shape)}")
        r = self.branch(x)
        return self.baseline(x) + step_value(step, r) * r

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_step(x, self.step)

    def extra_repr(self) -> str:
        n, m = self.branch.B.shape
        return f"n={n}, m={m}, step={float(self.step.detach()):.4g}, learn_step={self.learn_step}"
