"""Tests of manifres.nn.unet: each skip mode against the U-Net graph built by hand."""

import pytest
import torch
import torch.nn.functional as F

from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import UNet
from manifres.stability import jacobian_spectrum
from manifres.testing import tol

_OPS = {
    1: (F.conv1d, F.conv_transpose1d, F.avg_pool1d),
    2: (F.conv2d, F.conv_transpose2d, F.avg_pool2d),
}


def _by_hand(net, x, skip):
    """Two levels written out: e0 -> pool -> e1 -> pool -> e2 -> up -> merge -> d1 -> up -> merge -> d0."""
    conv, up, pool = _OPS[net.dim]

    def block(seq, z):
        c = seq[0]
        return torch.relu(conv(z, c.weight, c.bias, padding="same"))

    def upconv(m, z):
        return up(z, m.weight, m.bias, stride=2)

    def merge(e, u):
        return {"add": e + u, "concat": torch.cat([e, u], 1), None: u}[skip]

    e0 = block(net.encoders[0], x)
    e1 = block(net.encoders[1], pool(e0, 2))
    e2 = block(net.encoders[2], pool(e1, 2))
    d1 = block(net.decoders[1], merge(e1, upconv(net.ups[1], e2)))
    d0 = block(net.decoders[0], merge(e0, upconv(net.ups[0], d1)))
    return conv(d0, net.head.weight, net.head.bias)


@pytest.mark.parametrize("skip", ["add", "concat", None])
@pytest.mark.parametrize("dim,shape", [(1, (2, 3, 12)), (2, (2, 3, 8, 4))])
def test_matches_hand_built_graph(dtype, skip, dim, shape):
    torch.manual_seed(0)
    net = UNet(3, 2, channels=(4, 5, 6), dim=dim, skip=skip).to(dtype)
    x = torch.randn(shape, dtype=dtype)
    y = net(x)
    assert y.shape == (shape[0], 2) + shape[2:] and y.dtype == dtype
    torch.testing.assert_close(y, _by_hand(net, x, skip), atol=tol(dtype), rtol=0)


def test_skip_modes_change_only_the_decoders():
    sizes = {
        s: [m[0].in_channels for m in UNet(1, 1, (4, 6), skip=s).decoders] for s in ("add", "concat", None)
    }
    assert sizes == {"add": [4], "concat": [8], None: [4]}
    one = UNet(2, 2, (4,))  # no levels: conv block and head
    assert one.levels == 0 and one(torch.randn(1, 2, 5)).shape == (1, 2, 5)


def test_without_skips_the_jacobian_has_bottleneck_rank():
    """Rank of d y / d x: at most channels[-1] * L / 2**levels without skips, full with them."""
    torch.manual_seed(1)
    x = torch.randn(1, 2, 16, dtype=torch.float64)
    ranks = {}
    for skip in ("add", "concat", None):
        net = UNet(2, 2, (3, 3, 3), dim=1, skip=skip, activation="tanh").double()
        sv = jacobian_spectrum(net, x, sample_ndim=2).singular_values[0]
        ranks[skip] = int((sv > 1e-10 * sv[0]).sum())
    bound = 3 * 16 // 4
    assert ranks[None] <= bound
    assert ranks["add"] > bound and ranks["concat"] > bound


def test_errors():
    with pytest.raises(UnknownChoiceError, match="skip"):
        UNet(1, 1, skip="sum")
    with pytest.raises(ParameterError):
        UNet(1, 1, channels=())
    with pytest.raises(ParameterError):
        UNet(1, 1, dim=3)
    with pytest.raises(ShapeError, match="divisible by 2 \\*\\* levels = 4"):
        UNet(1, 1, (2, 2, 2))(torch.randn(1, 1, 10))
    with pytest.raises(ShapeError, match="N, C, H, W"):
        UNet(1, 1, (2, 2), dim=2)(torch.randn(1, 1, 8))
    assert "skip='add'" in repr(UNet(1, 1))
