r"""Transformer block: self-attention and an MLP on one residual stream, pre- or post-LN.

The two residual sub-layers share one step :math:`h`: with ``norm="pre"`` (GPT-2 and most
current models) the stream is :math:`x + hF(\mathrm{LN}(x))` and the identity path is never
normalised; with ``norm="post"`` (the original Transformer of Vaswani et al. 2017) each
addition is followed by a LayerNorm, which sits on the identity path.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._deprecation import UNSET
from .._validation import check_choice, check_int, check_real
from ..errors import ParameterError, ShapeError
from .activations import activation as _activation
from .protocol import resolve_step, step_value
from .residual import _register_step, _reset_children, _step_args

__all__ = ["TransformerBlock"]

_NORMS = ("pre", "post")


class _SelfAttention(nn.Module):
    r"""Multi-head self-attention written out: :math:`\mathrm{softmax}(QK^T/\sqrt{d_h})V`.

    ``qkv`` packs :math:`W_Q, W_K, W_V` as ``nn.MultiheadAttention``'s ``in_proj_weight`` does.
    The softmax is computed explicitly (not by a fused kernel), so the map is differentiable
    twice, which the stability studies' Jacobian-vector products need.
    """

    def __init__(self, d_model: int, heads: int, causal: bool, bias: bool) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        t, d = x.shape[-2:]
        dh = d // self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def split(z: Tensor) -> Tensor:  # (..., T, d) -> (..., H, T, dh)
            return z.reshape(z.shape[:-1] + (self.heads, dh)).transpose(-3, -2)

        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, -torch.inf)
        o = torch.softmax(scores, dim=-1) @ v
        return self.out(o.transpose(-3, -2).reshape(x.shape))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, causal={self.causal}"


class TransformerBlock(nn.Module):
    r"""Self-attention and MLP sub-layers on a residual stream, with one step :math:`h`.

    .. math::
        \text{pre-LN:}\quad u = x + h\,A(\mathrm{LN}_1(x)), \qquad
        y = u + h\,M(\mathrm{LN}_2(u)),

        \text{post-LN:}\quad u = \mathrm{LN}_1(x + h\,A(x)), \qquad
        y = \mathrm{LN}_2(u + h\,M(u)),

    with :math:`A(z) = \mathrm{concat}_j\big(\mathrm{softmax}(Q_j K_j^T / \sqrt{d_h}) V_j\big)
    W_O^T + b_O` (``heads`` heads of width :math:`d_h = d / \text{heads}`,
    :math:`Q = z W_Q^T + b_Q`, ...; with ``causal=True`` token ``i`` attends to ``j <= i``) and
    :math:`M(z) = W_2\,\sigma(W_1 z + b_1) + b_2`.

    Parameters
    ----------
    d_model : int
        ``d``, the width of the residual stream.
    heads : int
        Number of attention heads (must divide ``d_model``).
    mlp_hidden : int, optional
        Hidden width of the MLP (default ``4 d``).
    norm : {"pre", "post"}
        Where the LayerNorms sit.
    activation : str or nn.Module
        :math:`\sigma` of the MLP (default ``"gelu"``).
    causal : bool
        Mask attention to earlier tokens.
    step, learn_step
        The step :math:`h` of both sub-layers (a number, default 1), as in
        :class:`~manifres.nn.Residual`.
    bias : bool
        Biases in the attention and MLP maps.
    eps : float
        LayerNorm epsilon.

    Attributes
    ----------
    attention : nn.Module
        :math:`A`, with ``qkv`` (packed :math:`W_Q, W_K, W_V`, the layout of
        ``nn.MultiheadAttention.in_proj_weight``) and ``out`` (:math:`W_O`).
    mlp : nn.Sequential
        :math:`M`.
    norm1, norm2 : nn.LayerNorm
    branch : nn.ModuleDict
        The two branches ``{"attention": A, "mlp": M}`` (a view; the residual-step protocol).
    step : Tensor
        :math:`h` (a Parameter or a buffer).
    manifold : None
    sample_ndim : int
        2: one sample is a sequence ``(T, d)``; the Jacobians couple the tokens.

    Shapes:
        - **input:** ``(..., T, d)``
        - **output:** ``(..., T, d)``

    Raises
    ------
    ParameterError
        If ``d_model``, ``heads`` or ``mlp_hidden`` is not a positive integer, ``heads`` does
        not divide ``d_model``, or ``step``/``eps`` is invalid.
    UnknownChoiceError
        For an unknown ``norm`` or activation.
    ShapeError
        At a call, if the input is not ``(..., T, d_model)``.

    Notes
    -----
    Attention is computed by the formula above (not by
    ``torch.nn.functional.scaled_dot_product_attention``), so the block is twice
    differentiable, as :func:`~manifres.stability.depth_profile` needs; it agrees with
    ``nn.MultiheadAttention`` given the same weights. Post-LN's Jacobian is singular: each
    LayerNorm removes, per token, the mean direction and (by its scale invariance) the
    direction of its input, so :math:`\sigma_{\min} = 0` at any step.

    Examples
    --------
    >>> import torch
    >>> block = TransformerBlock(8, heads=2, norm="pre", step=0.0)
    >>> x = torch.randn(3, 5, 8)
    >>> torch.equal(block(x), x)
    True
    >>> block.sample_ndim, TransformerBlock(8, 2, norm="post")(x).shape
    (2, torch.Size([3, 5, 8]))
    """

    manifold = None
    sample_ndim = 2

    def __init__(
        self,
        d_model: int,
        heads: int,
        mlp_hidden: int | None = None,
        *,
        norm: str = "pre",
        activation: str | nn.Module = "gelu",
        causal: bool = False,
        step: float | Tensor = UNSET,
        learn_step: bool = UNSET,
        bias: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.d_model = check_int(d_model, "d_model", name, minimum=1)
        self.heads = check_int(heads, "heads", name, minimum=1)
        if self.d_model % self.heads:
            raise ParameterError(f"{name}: heads = {heads} must divide d_model = {d_model}")
        hidden = (
            4 * self.d_model if mlp_hidden is None else check_int(mlp_hidden, "mlp_hidden", name, minimum=1)
        )
        self.norm = check_choice(norm, _NORMS, "norm", name)
        eps = check_real(eps, "eps", name, minimum=0.0, strict_min=True)
        step, learn_step = _step_args(name, step, learn_step, {})
        _register_step(self, resolve_step(step, name, scalar=True), learn_step, name)
        self.attention = _SelfAttention(self.d_model, self.heads, bool(causal), bias)
        self.mlp = nn.Sequential(
            nn.Linear(self.d_model, hidden, bias=bias),
            _activation(activation, name),
            nn.Linear(hidden, self.d_model, bias=bias),
        )
        self.norm1 = nn.LayerNorm(self.d_model, eps=eps)
        self.norm2 = nn.LayerNorm(self.d_model, eps=eps)

    @property
    def branch(self) -> nn.ModuleDict:
        return nn.ModuleDict({"attention": self.attention, "mlp": self.mlp})

    def reset_parameters(self) -> None:
        """Restore the initial step and re-initialise both sub-layers and the norms."""
        with torch.no_grad():
            self.step.copy_(self._step_init)
        _reset_children(self.attention, self.mlp, self.norm1, self.norm2)

    def forward_with_step(self, x: Tensor, step: float | Tensor) -> Tensor:
        """The block with the step given explicitly (differentiable in ``step``)."""
        if x.dim() < 2 or x.shape[-1] != self.d_model:
            raise ShapeError(
                f"{type(self).__name__}: input must have shape (..., T, {self.d_model}), got {tuple(x.shape)}"
            )
        h = step_value(step, x)
        if self.norm == "pre":
            u = x + h * self.attention(self.norm1(x))
            return u + h * self.mlp(self.norm2(u))
        u = self.norm1(x + h * self.attention(x))
        return self.norm2(u + h * self.mlp(u))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_step(x, self.step)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, heads={self.heads}, norm={self.norm!r}, "
            f"step={float(self.step.detach()):.4g}, learn_step={self.learn_step}"
        )
