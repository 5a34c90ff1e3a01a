r"""Densely connected blocks (DenseNet): every layer sees the concatenation of all before it.

Where a residual block *adds* its correction to the stream (:math:`x + hF(x)`, the width stays
``d``), a dense block *concatenates* (Huang et al. 2017): layer ``l`` reads
:math:`[x, y_1, \dots, y_{l-1}]` and appends ``growth`` new features, so the stream widens by
``growth`` per layer and an optional transition maps it back down.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_choice, check_int
from ._maps import KINDS, check_features, feature_axis, feature_map
from .activations import activation as _activation
from .residual import _reset_children

__all__ = ["DenseBlock"]


class DenseBlock(nn.Module):
    r"""DenseNet block: ``L`` layers, each appending ``growth`` features to the concatenation.

    .. math:: z_0 = x, \qquad y_l = W_l\,\sigma(z_{l-1}) + b_l, \qquad
              z_l = [z_{l-1}, y_l] \quad (l = 1, \dots, L), \qquad
              \text{out} = z_L \ \text{or}\ W_T\,\sigma(z_L) + b_T

    with :math:`z_l` of ``d + l k`` features (``d`` = ``features``, ``k`` = ``growth``) and the
    optional transition :math:`W_T : \mathbb{R}^{d + Lk} \to \mathbb{R}^{t}` (1x1 for
    convolutions; DenseNet's transition also pools, this one does not change the resolution).

    Parameters
    ----------
    features : int
        ``d``, the input features (channels).
    growth : int
        ``k``, the features each layer appends (the growth rate).
    layers : int
        ``L >= 0``, the number of layers.
    kind : {"linear", "conv1d", "conv2d"}
        Dense features on the last axis, or stride-1 ``"same"`` convolutions over axis 1.
    kernel_size : int
        Kernel of each layer :math:`W_l` (convolutions only).
    activation : str or nn.Module
        :math:`\sigma` (default ``"relu"``), applied before each map (pre-activation).
    transition : int, optional
        ``t``: end with the transition to ``t`` features (``features`` makes the block map
        ``d`` features to ``d``).
    bias : bool
        Biases :math:`b_l, b_T`.

    Attributes
    ----------
    dense_layers : nn.ModuleList
        The ``L`` maps :math:`W_l` (``d + (l-1)k -> k``), each after its activation.
    transition : nn.Module or None
        :math:`W_T\sigma`, or ``None``.
    out_features : int
        ``t``, or ``d + L k`` without a transition.

    Shapes:
        - **input:** ``(..., d)`` (``"linear"``), ``(N, d, L)`` or ``(N, d, H, W)``
        - **output:** the same with ``out_features`` features

    Raises
    ------
    ParameterError
        If ``features``, ``growth``, ``kernel_size`` or ``transition`` is not a positive
        integer, or ``layers`` is negative.
    UnknownChoiceError
        For an unknown ``kind`` or activation.
    ShapeError
        At a call, if the input does not have ``features`` features on the axis of ``kind``.

    Notes
    -----
    The block has no step (concatenation has no :math:`x + hF` form), so it is not a layer of
    the residual-step protocol. To study it:

    * stacks that change the width (no transition, or ``transition != features``):
      :func:`~manifres.stability.depth_profile` with ``spectra=False`` (gradient norms and
      cosines per block, forward gains; the spectra need square Jacobians);
    * ``transition=features``: the block maps ``d`` features to ``d``, so
      :func:`~manifres.stability.jacobian_spectrum` and ``depth_profile`` with spectra apply
      (pass ``sample_ndim=2`` or ``3`` for the convolution kinds);
    * memory: every layer's input is a new concatenation, so a forward pass saves
      :math:`\sum_l (d + (l - 1) k)` features per position for the backward pass, quadratic in
      ``L`` (:func:`~manifres.stability.saved_activation_bytes` measures it).

    Examples
    --------
    >>> import torch
    >>> block = DenseBlock(4, growth=3, layers=2)
    >>> x = torch.randn(5, 4)
    >>> y = block(x)
    >>> y.shape, torch.equal(y[:, :4], x)
    (torch.Size([5, 10]), True)
    >>> DenseBlock(4, 3, 2, transition=4)(x).shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        features: int,
        growth: int,
        layers: int,
        *,
        kind: str = "linear",
        kernel_size: int = 3,
        activation: str | nn.Module = "relu",
        transition: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.features = check_int(features, "features", name, minimum=1)
        self.growth = check_int(growth, "growth", name, minimum=1)
        self.num_layers = check_int(layers, "layers", name, minimum=0)
        self.kind = check_choice(kind, KINDS, "kind", name)
        self.kernel_size = check_int(kernel_size, "kernel_size", name, minimum=1)
        widths = [self.features + l * self.growth for l in range(self.num_layers + 1)]
        self.dense_layers = nn.ModuleList(
            nn.Sequential(
                _activation(activation, name),
                feature_map(self.kind, w, self.growth, self.kernel_size, 1, bias),
            )
            for w in widths[:-1]
        )
        if transition is None:
            self.transition = None
            self.out_features = widths[-1]
        else:
            t = check_int(transition, "transition", name, minimum=1)
            self.transition = nn.Sequential(
                _activation(activation, name), feature_map(self.kind, widths[-1], t, 1, 1, bias)
            )
            self.out_features = t

    def reset_parameters(self) -> None:
        """Re-initialise every layer (and the transition)."""
        _reset_children(self.dense_layers, *([] if self.transition is None else [self.transition]))

    def forward(self, x: Tensor) -> Tensor:
        check_features(x, self.kind, self.features, type(self).__name__)
        axis = feature_axis(self.kind)
        z = x
        for layer in self.dense_layers:
            z = torch.cat([z, layer(z)], dim=axis)
        return z if self.transition is None else self.transition(z)

    def extra_repr(self) -> str:
        t = "" if self.transition is None else f", transition={self.out_features}"
        return (
            f"features={self.features}, growth={self.growth}, layers={self.num_layers}, kind={self.kind!r}{t}"
        )
