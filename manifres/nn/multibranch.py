r"""Aggregated residual transformations (ResNeXt): ``C`` parallel branches on one residual stream.

A ResNeXt block (Xie et al. 2017) splits the residual branch into ``C`` (the *cardinality*)
narrow bottleneck branches and sums them. Written with grouped maps, the ``C`` branches are one
reduce map, one grouped transform and one expand map, which is how this module computes them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._deprecation import UNSET
from .._validation import check_choice, check_int
from ._maps import KINDS, check_features, feature_map, kind_sample_ndim
from .activations import activation as _activation
from .protocol import resolve_step, step_value
from .residual import _register_step, _reset_children, _step_args

__all__ = ["MultiBranchResidual"]


class _GroupedLinear(nn.Module):
    r"""``C`` independent linear maps on ``C`` slices of the last axis (a block-diagonal matrix).

    .. math:: (y_k) = W_k\,x_k + b_k, \qquad x = (x_1, \dots, x_C),\ x_k \in \mathbb{R}^{b}
    """

    def __init__(self, groups: int, in_width: int, out_width: int, bias: bool = True) -> None:
        super().__init__()
        self.groups, self.in_width, self.out_width = groups, in_width, out_width
        self.weight = nn.Parameter(torch.empty(groups, out_width, in_width))
        self.bias = nn.Parameter(torch.empty(groups * out_width)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each group as ``nn.Linear(in_width, out_width)``: :math:`U(-1/\\sqrt{b}, 1/\\sqrt{b})`."""
        bound = 1.0 / math.sqrt(self.in_width)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        xs = x.reshape(x.shape[:-1] + (self.groups, self.in_width))
        y = torch.einsum("...ci,coi->...co", xs, self.weight).reshape(x.shape[:-1] + (-1,))
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"groups={self.groups}, in_width={self.in_width}, out_width={self.out_width}"


class MultiBranchResidual(nn.Module):
    r"""Residual block with ``C`` parallel bottleneck branches (ResNeXt), summed.

    .. math:: y = x + h\Big(\sum_{k=1}^{C} U_k\,\sigma\big(T_k\,\sigma(D_k x + d_k) + t_k\big)
              + u\Big)

    with :math:`D_k : \mathbb{R}^{d} \to \mathbb{R}^{b}` (reduce), :math:`T_k : \mathbb{R}^{b}
    \to \mathbb{R}^{b}` (transform) and :math:`U_k : \mathbb{R}^{b} \to \mathbb{R}^{d}` (expand),
    ``d`` the features, ``b`` the width of one branch and ``C`` the cardinality. For
    convolutions :math:`D_k, U_k` are 1x1 and :math:`T_k` has ``kernel_size``. The ``C``
    branches are computed together: the :math:`D_k` stacked into one map ``d -> C b``, the
    :math:`T_k` as one grouped map (``C`` groups), the :math:`U_k` side by side as one map
    ``C b -> d`` (whose bias is the shared :math:`u`).

    Parameters
    ----------
    features : int
        ``d``, the size of the residual stream.
    cardinality : int
        ``C >= 1``, the number of branches.
    width : int
        ``b >= 1``, the bottleneck width of each branch.
    kind : {"linear", "conv1d", "conv2d"}
        Dense features on the last axis, or stride-1 ``"same"`` convolutions over axis 1 of
        ``(N, d, L)`` or ``(N, d, H, W)``.
    kernel_size : int
        Kernel of the grouped transform :math:`T_k` (convolutions only).
    activation : str or nn.Module
        :math:`\sigma`, from :mod:`manifres.nn.activations` (default ``"relu"``).
    step, learn_step
        The step :math:`h` (a number, default 1), as in :class:`~manifres.nn.Residual`.
    bias : bool
        Biases :math:`d_k, t_k, u`.

    Attributes
    ----------
    branch : nn.Sequential
        ``F = sum_k F_k``: ``reduce, activation, transform, activation, expand``.
    step : Tensor
        :math:`h` (a Parameter or a buffer).
    manifold : None
    sample_ndim : int
        1 for ``"linear"``, 2 for ``"conv1d"``, 3 for ``"conv2d"``: one sample is ``(d,)``,
        ``(d, L)`` or ``(d, H, W)``, so the stability studies take the Jacobian per sample.

    Shapes:
        - **input:** ``(..., d)`` (``"linear"``), ``(N, d, L)`` or ``(N, d, H, W)``
        - **output:** the shape of the input

    Raises
    ------
    ParameterError
        If ``features``, ``cardinality``, ``width`` or ``kernel_size`` is not a positive
        integer, or ``step`` is not finite.
    UnknownChoiceError
        For an unknown ``kind`` or activation.
    ShapeError
        At a call, if the input does not have ``features`` features on the axis of ``kind``.

    Notes
    -----
    The block implements the residual-step protocol (:mod:`manifres.nn.protocol`), so
    :func:`~manifres.stability.jacobian_spectrum`, :func:`~manifres.stability.depth_profile`
    and :func:`~manifres.stability.scale_sweep` study it (and stacks of it) directly.
    :meth:`count_parameters` gives the size of a block before building it, to compare
    cardinality and width at an equal parameter count.

    Examples
    --------
    >>> import torch
    >>> block = MultiBranchResidual(8, cardinality=4, width=2, step=0.5)
    >>> x = torch.randn(3, 8)
    >>> torch.allclose(block(x), x + 0.5 * block.branch(x))
    True
    >>> block.count_parameters(8, 4, 2) == sum(p.numel() for p in block.parameters())
    True
    """

    manifold = None

    def __init__(
        self,
        features: int,
        cardinality: int,
        width: int,
        *,
        kind: str = "linear",
        kernel_size: int = 3,
        activation: str | nn.Module = "relu",
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.features = check_int(features, "features", name, minimum=1)
        self.cardinality = check_int(cardinality, "cardinality", name, minimum=1)
        self.width = check_int(width, "width", name, minimum=1)
        self.kind = check_choice(kind, KINDS, "kind", name)
        self.kernel_size = check_int(kernel_size, "kernel_size", name, minimum=1)
        step, learn_step = _step_args(name, step, learn_step, {})
        _register_step(self, resolve_step(step, name, scalar=True), learn_step, name)
        inner = self.cardinality * self.width
        if self.kind == "linear":
            transform: nn.Module = _GroupedLinear(self.cardinality, self.width, self.width, bias=bias)
        else:
            transform = feature_map(self.kind, inner, inner, self.kernel_size, self.cardinality, bias)
        self.branch = nn.Sequential(
            feature_map(self.kind, self.features, inner, 1, 1, bias),
            _activation(activation, name),
            transform,
            _activation(activation, name),
            feature_map(self.kind, inner, self.features, 1, 1, bias),
        )

    @property
    def sample_ndim(self) -> int:
        return kind_sample_ndim(self.kind)

    @staticmethod
    def count_parameters(
        features: int,
        cardinality: int,
        width: int,
        kind: str = "linear",
        kernel_size: int = 3,
        bias: bool = True,
    ) -> int:
        r"""Number of parameters of a block: :math:`2 d C b + C b^2 r + [\text{bias}](2 C b + d)`
        with :math:`r` = ``kernel_size`` (``"conv1d"``), its square (``"conv2d"``) or 1.

        Examples
        --------
        >>> MultiBranchResidual.count_parameters(64, 1, 32), MultiBranchResidual.count_parameters(64, 8, 4)
        (5248, 4352)
        """
        check_choice(kind, KINDS, "kind", "MultiBranchResidual.count_parameters")
        r = {"linear": 1, "conv1d": kernel_size, "conv2d": kernel_size**2}[kind]
        inner = cardinality * width
        return 2 * features * inner + inner * width * r + (2 * inner + features if bias else 0)

    def reset_parameters(self) -> None:
        """Restore the initial step and re-initialise the branches."""
        with torch.no_grad():
            self.step.copy_(self._step_init)
        _reset_children(self.branch)

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        """The block with the step given explicitly (differentiable in ``step``)."""
        check_features(x, self.kind, self.features, type(self).__name__)
        r = self.branch(x)
        return x + step_value(step, r) * r

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_step(x, self.step)

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, cardinality={self.cardinality}, width={self.width}, "
            f"kind={self.kind!r}, step={float(self.step.detach()):.4g}, learn_step={self.learn_step}"
        )
