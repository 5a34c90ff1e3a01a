r"""U-Net (1-D and 2-D): an encoder-decoder whose skips carry each resolution across.

The encoder halves the resolution ``levels`` times, the decoder doubles it back, and at each
resolution a *skip* hands the encoder's features to the decoder: added (``skip="add"``),
concatenated (``"concat"``, the original U-Net of Ronneberger et al. 2015) or dropped
(``None``: a plain encoder-decoder, whose output sees the input only through the bottleneck).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_choice, check_int
from ..errors import ParameterError, ShapeError
from .activations import activation as _activation
from .residual import _reset_children

__all__ = ["UNet"]

_SKIPS = ("add", "concat", None)
_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_UP = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d}


class UNet(nn.Module):
    r"""U-Net with ``levels = len(channels) - 1`` down- and up-sampling steps.

    With :math:`E_i(z) = \sigma(\mathrm{conv}_i(z))` the encoder blocks, :math:`P` the 2x
    average pool, :math:`U_i` a 2x transposed convolution (kernel 2, stride 2) and
    :math:`D_i(z) = \sigma(\mathrm{conv}'_i(z))` the decoder blocks:

    .. math::
        e_0 = E_0(x), \qquad e_i = E_i(P\,e_{i-1}) \ (i = 1, \dots, n), \qquad u_n = e_n,

        u_i = D_i\big(m(e_i, U_i u_{i+1})\big) \ (i = n - 1, \dots, 0), \qquad
        y = W u_0 + b,

    where the merge is :math:`m(e, u) = e + u` (``"add"``), :math:`[e, u]` along the channels
    (``"concat"``) or :math:`u` (``None``), and :math:`W` is a 1x1 convolution. Level ``i`` has
    ``channels[i]`` channels at :math:`1/2^i` of the input's resolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    channels : sequence of int
        Channels per level, top (full resolution) first; ``len(channels) >= 1``.
    dim : {1, 2}
        1-D signals ``(N, C, L)`` or 2-D images ``(N, C, H, W)``.
    skip : {"add", "concat", None}
        How each decoder level receives the encoder's features at its resolution.
    kernel_size : int
        Kernel of every encoder and decoder convolution (stride 1, ``"same"`` padding).
    activation : str or nn.Module
        :math:`\sigma` (default ``"relu"``).
    bias : bool
        Biases in every convolution.

    Attributes
    ----------
    encoders : nn.ModuleList
        :math:`E_0, \dots, E_n` (``conv, activation``).
    ups : nn.ModuleList
        :math:`U_0, \dots, U_{n-1}` (:math:`U_i`: ``channels[i+1] -> channels[i]``).
    decoders : nn.ModuleList
        :math:`D_0, \dots, D_{n-1}`; :math:`D_i` reads ``2 channels[i]`` channels with
        ``"concat"``, else ``channels[i]``.
    head : nn.Module
        The 1x1 convolution ``channels[0] -> out_channels``.
    levels : int
        ``n = len(channels) - 1``.

    Shapes:
        - **input:** ``(N, in_channels, L)`` (``dim=1``) or ``(N, in_channels, H, W)``
          (``dim=2``), each spatial size divisible by ``2 ** levels``
        - **output:** ``(N, out_channels, L)`` or ``(N, out_channels, H, W)``

    Raises
    ------
    ParameterError
        If a channel count, ``kernel_size`` or ``dim`` is invalid, or ``channels`` is empty.
    UnknownChoiceError
        For an unknown ``skip`` or activation.
    ShapeError
        At a call, for a wrong layout or channel count, or a spatial size not divisible by
        ``2 ** levels``.

    Notes
    -----
    A U-Net has no step, so it is not a layer of the residual-step protocol. It is one map
    from ``(in_channels, *spatial)`` to ``(out_channels, *spatial)`` per sample: with
    ``in_channels == out_channels``, :func:`~manifres.stability.jacobian_spectrum` takes its
    Jacobian with ``sample_ndim=dim + 1``. Without skips the output depends on the input only
    through the bottleneck :math:`e_n`, so that Jacobian has rank at most
    ``channels[-1] * prod(spatial) / 2 ** (levels * dim)``; the skips remove that limit.

    Examples
    --------
    >>> import torch
    >>> net = UNet(2, 3, channels=(4, 8), dim=1, skip="concat")
    >>> net(torch.randn(5, 2, 16)).shape
    torch.Size([5, 3, 16])
    >>> UNet(1, 1, (4, 4, 4), dim=2, skip=None)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (8, 16, 32),
        *,
        dim: int = 1,
        skip: str | None = "add",
        kernel_size: int = 3,
        activation: str | nn.Module = "relu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(in_channels, "in_channels", name, minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", name, minimum=1)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise ParameterError(f"{name}: channels must be a non-empty sequence of ints, got {channels!r}")
        self.channels = tuple(check_int(c, "channels", name, minimum=1) for c in channels)
        self.dim = check_int(dim, "dim", name, minimum=1, maximum=2)
        self.skip = check_choice(skip, _SKIPS, "skip", name)
        self.kernel_size = check_int(kernel_size, "kernel_size", name, minimum=1)
        conv, up = _CONV[self.dim], _UP[self.dim]
        c = self.channels
        k = self.kernel_size

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                conv(c_in, c_out, k, padding="same", bias=bias), _activation(activation, name)
            )

        ins = (self.in_channels,) + c[:-1]
        self.encoders = nn.ModuleList(block(c_in, c_out) for c_in, c_out in zip(ins, c, strict=True))
        self.ups = nn.ModuleList(up(c[i + 1], c[i], 2, stride=2, bias=bias) for i in range(len(c) - 1))
        mult = 2 if self.skip == "concat" else 1
        self.decoders = nn.ModuleList(block(mult * c[i], c[i]) for i in range(len(c) - 1))
        self.head = conv(c[0], out_channels, 1, bias=bias)

    @property
    def levels(self) -> int:
        return len(self.channels) - 1

    def reset_parameters(self) -> None:
        """Re-initialise every convolution."""
        _reset_children(self.encoders, self.ups, self.decoders, self.head)

    def _check(self, x: Tensor) -> None:
        name = type(self).__name__
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            layout = "(N, C, L)" if self.dim == 1 else "(N, C, H, W)"
            raise ShapeError(
                f"{name}: input must have shape {layout} with C = {self.in_channels}, got {tuple(x.shape)}"
            )
        div = 2**self.levels
        if any(s % div for s in x.shape[2:]):
            raise ShapeError(
                f"{name}: every spatial size must be divisible by 2 ** levels = {div}, "
                f"got {tuple(x.shape[2:])}"
            )

    def _merge(self, e: Tensor, u: Tensor) -> Tensor:
        if self.skip == "add":
            return e + u
        if self.skip == "concat":
            return torch.cat([e, u], dim=1)
        return u

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        pool = _POOL[self.dim]
        h = self.encoders[0](x)
        skips = []
        for enc in self.encoders[1:]:
            skips.append(h)
            h = enc(pool(h, 2))
        for i in range(self.levels - 1, -1, -1):
            h = self.decoders[i](self._merge(skips[i], self.ups[i](h)))
        return self.head(h)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, channels={self.channels}, dim={self.dim}, "
            f"skip={self.skip!r}"
        )
