r"""Vector fields for tangent residual layers and flows: plain ``nn.Module`` objects.

A field maps points ``x`` of shape ``(..., *point_shape)`` (and, when it is time dependent, a
time ``t``) to an ambient vector of the same shape. The layers project that vector onto the
tangent space, :math:`P_x F(x, t)`, so a field does not have to be tangent; the fields here
that are tangent by construction say so.

Calling convention
------------------
A field is called as ``field(x)`` or, when it is *time dependent*, as ``field(x, t)`` with
``t`` a Python float or a 0-dim tensor. :func:`is_time_dependent` decides which: the
attribute ``field.time_dependent`` when it exists (set it on your own modules to be
explicit), otherwise the signature of ``field.forward`` (or of the callable): a field that
accepts a second positional argument is time dependent.

Examples
--------
>>> import torch, manifres
>>> from manifres.nn import LinearField, is_time_dependent
>>> A = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> F = LinearField(A)
>>> F(torch.tensor([1.0, 0.0, 0.0]))
tensor([0., 1., 0.])
>>> is_time_dependent(F), is_time_dependent(lambda x, t: x)
(False, True)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._validation import check_int
from ..errors import DTypeError, ParameterError, ShapeError, UnknownChoiceError
from ..flows.evaluation import evaluate_field, is_time_dependent
from ..manifolds.base import Manifold
from ..manifolds.son import SpecialOrthogonal
from .activations import activation as make_activation

__all__ = [
    "is_time_dependent",
    "evaluate_field",
    "AmbientMLPField",
    "LieAlgebraField",
    "ConstantField",
    "LinearField",
]

def _check_param_dtype(module: nn.Module, weight: Tensor, x: Tensor) -> None:
    if x.dtype != weight.dtype:
        raise DTypeError(
            f"{type(module).__name__} has parameters of dtype {weight.dtype} but the input has "
            f"dtype {x.dtype}; call .to({x.dtype}) on the field (or the whole model)"
        )


def _time_column(x: Tensor, t: float | Tensor | None, batch_ndim: int) -> Tensor:
    """The time as an extra feature column of shape ``(*batch, 1)``."""
    tt = torch.as_tensor(0.0 if t is None else t, dtype=x.dtype, device=x.device)
    return tt.reshape(()).expand(*x.shape[:batch_ndim], 1)


def _mlp(n_in: int, n_out: int, hidden: int, depth: int, activation: str) -> nn.Sequential:
    if not isinstance(hidden, int) or hidden < 1 or not isinstance(depth, int) or depth < 0:
        raise ParameterError(f"hidden must be an int >= 1 and depth an int >= 0, got {hidden}, {depth}")
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), make_activation(activation)]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class AmbientMLPField(nn.Module):
    r"""An MLP on the ambient coordinates whose output is projected onto the tangent space.

    .. math:: F(x, t) = P_x\,\mathrm{MLP}([\operatorname{vec}(x), t])

    Shapes: ``x``: ``(..., *point_shape)`` -> ``(..., *point_shape)``, tangent at ``x``.

    Parameters
    ----------
    manifold : Manifold
        Points have shape ``(..., *manifold.point_shape)``; the output is
        ``manifold.proj(x, mlp(x))``.
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers (0 gives an affine map).
    activation : {"tanh", "silu", "softplus", "relu", "gelu"}
        Nonlinearity between the linear layers.
    time_dependent : bool
        Append ``t`` to the input features; the field is then called as ``F(x, t)``.
    zero_init : bool
        Zero the last layer, so the field starts at 0 (a layer using it starts as the
        identity).

    Raises
    ------
    DTypeError
        If the input dtype differs from the parameters' dtype (convert with ``.double()``).

    Notes
    -----
    The manifold axes are flattened into ``prod(point_shape)`` features for the MLP and
    restored afterwards; batch axes are untouched.

    Examples
    --------
    >>> import torch, manifres
    >>> S = manifres.Sphere(2)
    >>> F = AmbientMLPField(S, hidden=8, depth=1)
    >>> x = S.random(5)
    >>> v = F(x)
    >>> v.shape, bool(((x * v).sum(-1).abs() < 1e-6).all())
    (torch.Size([5, 3]), True)
    """

    def __init__(
        self,
        manifold: Manifold,
        hidden: int = 32,
        depth: int = 2,
        activation: str = "tanh",
        time_dependent: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(manifold, Manifold):
            raise TypeError(f"manifold must be a manifres Manifold, got {type(manifold).__name__}")
        self.manifold = manifold
        self.time_dependent = bool(time_dependent)
        self._n = math.prod(manifold.point_shape)
        self.net = _mlp(self._n + int(self.time_dependent), self._n, hidden, depth, activation)
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, t: float | Tensor | None = None) -> Tensor:
        _check_param_dtype(self, self.net[0].weight, x)
        self.manifold._check(x, names=("x",))
        k = self.manifold.ndim
        z = x.flatten(start_dim=x.dim() - k) if k > 1 else x
        if self.time_dependent:
            z = torch.cat([z, _time_column(x, t, x.dim() - k)], dim=-1)
        u = self.net(z).to(x.dtype)  # a no-op, except a half output under autocast
        u = u.unflatten(-1, self.manifold.point_shape) if k > 1 else u
        return self.manifold.proj(x, u)

    def extra_repr(self) -> str:
        return f"manifold={self.manifold!r}, time_dependent={self.time_dependent}"


class LieAlgebraField(nn.Module):
    r"""A field on :math:`SO(n)` given by an MLP with values in the Lie algebra.

    .. math:: F(R, t) = R\,W(R, t),\qquad W = \widehat{\mathrm{MLP}([\operatorname{vec}(R), t])}
        \in \mathfrak{so}(n)

    The MLP outputs the :math:`n(n-1)/2` coordinates ``c`` of a skew matrix
    ``W = SpecialOrthogonal(n).hat(c)`` (the package's one so(n) convention; for ``n = 3`` the
    rotation vector of :func:`manifres.so3.hat`); the tangent vector is ``R @ W``, tangent by
    construction.

    Shapes: ``R``: ``(..., n, n)`` -> ``(..., n, n)``.

    Parameters
    ----------
    n : int or Manifold
        The group dimension ``n`` of :math:`SO(n)`, or a manifold with point shape ``(n, n)``.
    hidden, depth, activation, zero_init
        As in :class:`AmbientMLPField`.
    time_dependent : bool
        Append ``t`` to the input features; the field is then called as ``F(R, t)``.

    Raises
    ------
    ShapeError
        If the input's trailing shape is not ``(n, n)``.
    DTypeError
        If the input dtype differs from the parameters' dtype.

    Examples
    --------
    >>> import torch
    >>> F = LieAlgebraField(3, hidden=8, depth=1, time_dependent=True)
    >>> R = torch.eye(3).expand(4, 3, 3)
    >>> W = F.algebra(R, 0.5)
    >>> W.shape, bool(torch.allclose(W, -W.mT))
    (torch.Size([4, 3, 3]), True)
    >>> bool(torch.allclose(F(R, 0.5), R @ W))
    True
    """

    def __init__(
        self,
        n: int | Manifold,
        hidden: int = 32,
        depth: int = 2,
        activation: str = "tanh",
        time_dependent: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(n, Manifold):
            shape = n.point_shape
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ShapeError(f"LieAlgebraField needs square points (n, n), {n!r} has {shape}")
            n = shape[0]
        n = check_int(n, "n", "LieAlgebraField", minimum=2)
        self.n = n
        self.time_dependent = bool(time_dependent)
        m = n * (n - 1) // 2
        self.net = _mlp(n * n + int(self.time_dependent), m, hidden, depth, activation)
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self._group = SpecialOrthogonal(n)

    def _check_input(self, R: Tensor) -> None:
        n = self.n
        if R.dim() < 2 or tuple(R.shape[-2:]) != (n, n):
            raise ShapeError(
                f"LieAlgebraField(n={n}) expects points of shape (..., {n}, {n}), got {tuple(R.shape)}"
            )
        _check_param_dtype(self, self.net[0].weight, R)

    def algebra(self, R: Tensor, t: float | Tensor | None = None) -> Tensor:
        """The skew matrix ``W(R, t)``, shape ``(..., n, n)``."""
        self._check_input(R)
        z = R.flatten(start_dim=-2)
        if self.time_dependent:
            z = torch.cat([z, _time_column(R, t, R.dim() - 2)], dim=-1)
        return self._group.hat(self.net(z).to(R.dtype))

    def forward(self, R: Tensor, t: float | Tensor | None = None) -> Tensor:
        return R @ self.algebra(R, t)

    def extra_repr(self) -> str:
        return f"n={self.n}, time_dependent={self.time_dependent}"


class ConstantField(nn.Module):
    r"""The constant ambient field :math:`F(x) = c` (projected by the layers: :math:`P_x c`).

    .. math:: F(x) = c

    Shapes: ``x``: ``(..., *point_shape)`` -> ``(..., *point_shape)`` (``c`` broadcast).

    Parameters
    ----------
    value : Tensor, shape (*point_shape)
        The constant ``c`` (cast to the input's dtype and device at call).
    learnable : bool
        Make ``c`` an ``nn.Parameter``.

    Raises
    ------
    ShapeError
        If ``c`` does not broadcast to the input's shape.

    Notes
    -----
    On the sphere :math:`P_x c` is the gradient of :math:`\langle c, x\rangle`: its flow
    runs to :math:`c/\|c\|`.

    Examples
    --------
    >>> import torch
    >>> F = ConstantField(torch.tensor([0.0, 0.0, 1.0]))
    >>> F(torch.zeros(2, 3))
    tensor([[0., 0., 1.],
            [0., 0., 1.]])
    """

    time_dependent = False

    def __init__(self, value: Tensor, learnable: bool = False) -> None:
        super().__init__()
        value = torch.as_tensor(value)
        if learnable:
            self.value = nn.Parameter(value.clone())
        else:
            self.register_buffer("value", value.clone())

    def forward(self, x: Tensor) -> Tensor:
        try:
            return self.value.to(dtype=x.dtype, device=x.device).expand(x.shape)
        except RuntimeError:
            raise ShapeError(
                f"ConstantField value of shape {tuple(self.value.shape)} does not broadcast to "
                f"the input shape {tuple(x.shape)}"
            ) from None


class LinearField(nn.Module):
    r"""The linear field :math:`F(x, t) = A(t)\,x` with :math:`A(t) = A + t\,\dot A`.

    .. math:: F(x, t) = (A + t\dot A)\,x

    With ``side=None`` the points are vectors (shape ``(..., d)``) and the field is the
    matrix-vector product :math:`A(t) x`; for matrix points (shape ``(..., d, d)``)
    ``side="left"`` gives :math:`A(t) X` and ``side="right"`` gives :math:`X A(t)`.

    With ``A`` skew-symmetric the flow is a rotation: on the sphere ``x' = A x`` has the
    exact solution :math:`x(t) = e^{tA} x_0` (a great or small circle), on :math:`SO(n)`
    ``R' = R A`` (``side="right"``, left invariant) has :math:`R(t) = R_0 e^{tA}`.

    Shapes: ``x``: ``(..., d)`` (``side=None``) or ``(..., d, d)`` -> same shape.

    Parameters
    ----------
    A : Tensor, shape (d, d)
        The matrix at ``t = 0``.
    rate : Tensor, shape (d, d), optional
        :math:`\dot A`; when given the field is time dependent (``F(x, t)``).
    side : {None, "left", "right"}
        ``None``: vector points. ``"left"``/``"right"``: matrix points multiplied by ``A`` on
        that side.
    learnable : bool
        Make ``A`` (and ``rate``) ``nn.Parameter``.

    Raises
    ------
    ShapeError
        If ``A`` is not square, ``rate`` has another shape, or the input's trailing shape
        does not fit ``A``.
    UnknownChoiceError
        If ``side`` is not ``None``, ``"left"`` or ``"right"``.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    >>> LinearField(A, rate=A)(torch.tensor([1.0, 0.0]), 2.0)
    tensor([0., 3.])
    >>> LinearField(A, side="right")(torch.eye(2))
    tensor([[ 0., -1.],
            [ 1.,  0.]])
    """

    def __init__(
        self,
        A: Tensor,
        rate: Tensor | None = None,
        side: str | None = None,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        A = torch.as_tensor(A)
        if A.dim() != 2 or A.shape[0] != A.shape[1]:
            raise ShapeError(f"LinearField needs a square matrix A, got shape {tuple(A.shape)}")
        if rate is not None:
            rate = torch.as_tensor(rate)
            if rate.shape != A.shape:
                raise ShapeError(
                    f"LinearField: rate has shape {tuple(rate.shape)} but A has {tuple(A.shape)}"
                )
        if side not in (None, "left", "right"):
            raise UnknownChoiceError(f"unknown side {side!r}; valid choices: None, 'left', 'right'")
        self.side = side
        self.time_dependent = rate is not None
        if learnable:
            self.A = nn.Parameter(A.clone())
            self.rate = None if rate is None else nn.Parameter(rate.clone())
        else:
            self.register_buffer("A", A.clone())
            self.register_buffer("rate", None if rate is None else rate.clone())

    def matrix(self, t: float | Tensor | None = None, like: Tensor | None = None) -> Tensor:
        """:math:`A(t)`, shape ``(d, d)``, in the dtype and on the device of ``like`` (default:
        the field's own)."""
        A, rate = self.A, self.rate
        if like is not None:
            A = A.to(dtype=like.dtype, device=like.device)
            rate = None if rate is None else rate.to(dtype=like.dtype, device=like.device)
        if rate is None or t is None:
            return A
        return A + t * rate

    def forward(self, x: Tensor, t: float | Tensor | None = None) -> Tensor:
        A = self.matrix(t, x)
        d = A.shape[0]
        if self.side is None:
            if x.dim() < 1 or x.shape[-1] != d:
                raise ShapeError(
                    f"LinearField with a {d}x{d} matrix needs points of shape (..., {d}), "
                    f"got {tuple(x.shape)}"
                )
            return (A @ x.unsqueeze(-1)).squeeze(-1)
        if x.dim() < 2 or tuple(x.shape[-2:]) != (d, d):
            raise ShapeError(
                f"LinearField(side={self.side!r}) with a {d}x{d} matrix needs points of shape "
                f"(..., {d}, {d}), got {tuple(x.shape)}"
            )
        return A @ x if self.side == "left" else x @ A

    def extra_repr(self) -> str:
        return f"d={self.A.shape[0]}, side={self.side!r}, time_dependent={self.time_dependent}"
