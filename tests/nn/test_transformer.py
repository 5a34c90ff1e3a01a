"""Tests of manifres.nn.transformer: pre-LN and post-LN against the formulas written with
torch's own ``nn.MultiheadAttention`` (given the block's weights)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from manifres.errors import ParameterError, ShapeError, UnknownChoiceError
from manifres.nn import TransformerBlock
from manifres.nn.protocol import is_residual_step
from manifres.stability import depth_profile, jacobian_spectrum, scale_sweep
from manifres.testing import tol


def _torch_attention(block, dtype):
    att = block.attention
    mha = nn.MultiheadAttention(block.d_model, block.heads, batch_first=True, dtype=dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(att.qkv.weight)
        mha.in_proj_bias.copy_(att.qkv.bias)
        mha.out_proj.weight.copy_(att.out.weight)
        mha.out_proj.bias.copy_(att.out.bias)
    mha.eval()

    def attend(z):
        t = z.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1) if att.causal else None
        return mha(z, z, z, attn_mask=mask, need_weights=False)[0]

    return attend


def _reference(block, x, h):
    attend = _torch_attention(block, x.dtype)

    def ln(m, z):
        return F.layer_norm(z, (block.d_model,), m.weight, m.bias, m.eps)

    def mlp(z):
        w1, w2 = block.mlp[0], block.mlp[2]
        return F.linear(F.gelu(F.linear(z, w1.weight, w1.bias)), w2.weight, w2.bias)

    if block.norm == "pre":
        u = x + h * attend(ln(block.norm1, x))
        return u + h * mlp(ln(block.norm2, u))
    u = ln(block.norm1, x + h * attend(x))
    return ln(block.norm2, u + h * mlp(u))


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_formula_with_torch_attention(dtype, norm, causal):
    torch.manual_seed(0)
    block = TransformerBlock(8, heads=2, mlp_hidden=12, norm=norm, causal=causal, step=0.7).to(dtype).eval()
    with torch.no_grad():  # non-trivial norms
        for m in (block.norm1, block.norm2):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
    x = torch.randn(3, 5, 8, dtype=dtype)
    y = block(x)
    assert y.shape == x.shape and y.dtype == dtype
    torch.testing.assert_close(y, _reference(block, x, 0.7), atol=tol(dtype) * 10, rtol=tol(dtype))


def test_causal_mask_hides_the_future():
    torch.manual_seed(1)
    block = TransformerBlock(4, 1, causal=True).double()
    x = torch.randn(1, 6, 4, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 4:] += 1.0
    torch.testing.assert_close(block(x)[0, :4], block(x2)[0, :4], atol=1e-14, rtol=0)
    assert not torch.allclose(block(x)[0, 4:], block(x2)[0, 4:])


def test_protocol_step_and_unbatched():
    torch.manual_seed(2)
    block = TransformerBlock(6, 3, norm="pre", step=0.25, learn_step=True).double()
    assert is_residual_step(block) and block.sample_ndim == 2 and block.manifold is None
    assert set(block.branch) == {"attention", "mlp"} and block.branch["mlp"] is block.mlp
    x = torch.randn(4, 6, dtype=torch.float64)  # one sequence without a batch axis
    torch.testing.assert_close(block(x), block(x[None])[0], atol=1e-14, rtol=0)
    torch.testing.assert_close(block(x), block.forward_with_step(x, 0.25), atol=0, rtol=0)
    # one step for both sub-layers: dy/dh by autograd equals the finite difference
    g = torch.randn(4, 6, dtype=torch.float64)
    (gs,) = torch.autograd.grad((g * block(x)).sum(), block.step)
    eps = 1e-6
    fd = (g * block.forward_with_step(x, 0.25 + eps)).sum() - (
        g * block.forward_with_step(x, 0.25 - eps)
    ).sum()
    torch.testing.assert_close(gs, fd / (2 * eps), atol=1e-7, rtol=1e-7)
    assert "norm='pre'" in repr(block)


def test_pre_ln_zero_step_is_identity_post_ln_is_not():
    x = torch.randn(2, 3, 4)
    assert torch.equal(TransformerBlock(4, 2, norm="pre", step=0.0)(x), x)
    post = TransformerBlock(4, 2, norm="post", step=0.0)
    torch.testing.assert_close(post(x), F.layer_norm(F.layer_norm(x, (4,)), (4,)), atol=1e-6, rtol=0)


def test_post_ln_jacobian_is_singular_pre_ln_is_not():
    """Per token, LayerNorm's Jacobian annihilates the constant direction: post-LN has at least
    T zero singular values whatever the step; pre-LN keeps the identity path."""
    torch.manual_seed(3)
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    post = jacobian_spectrum(TransformerBlock(8, 2, norm="post", step=0.5).double(), x)
    pre = jacobian_spectrum(TransformerBlock(8, 2, norm="pre", step=0.5).double(), x)
    assert post.dim == 24
    assert int((post.singular_values[0] < 1e-9).sum()) >= 3
    assert float(pre.sigma_min[0]) > 1e-3


def test_depth_profile_of_a_stack(dtype):
    torch.manual_seed(4)
    stack = nn.Sequential(*[TransformerBlock(4, 2, mlp_hidden=8, step=0.5) for _ in range(3)]).to(dtype)
    x = torch.randn(2, 3, 4, dtype=dtype)
    prof = depth_profile(stack, x)
    assert prof.dim == 12 and torch.isfinite(prof.step_grads).all()
    steps = [nn.Parameter(torch.tensor(0.5, dtype=dtype)) for _ in stack]
    y = x
    for layer, p in zip(stack, steps, strict=True):
        y = layer.forward_with_step(y, p)
    g = torch.randn(y.shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ref = torch.stack(torch.autograd.grad((g * y).sum() / y.shape[0], steps))
    torch.testing.assert_close(prof.step_grads, ref, atol=tol(dtype) * 10, rtol=tol(dtype) * 10)


def test_errors():
    with pytest.raises(ParameterError, match="divide"):
        TransformerBlock(6, 4)
    with pytest.raises(UnknownChoiceError, match="norm"):
        TransformerBlock(4, 2, norm="sandwich")
    with pytest.raises(ParameterError):
        TransformerBlock(4, 2, eps=0.0)
    with pytest.raises(ShapeError, match="T, 4"):
        TransformerBlock(4, 2)(torch.randn(3, 5))


def test_scale_sweep_moves_both_sublayers():
    """At step 0 a pre-LN stack is the identity (every J_l - I = 0); the sweep never modifies it."""
    torch.manual_seed(5)
    stack = nn.Sequential(*[TransformerBlock(4, 2, mlp_hidden=8, step=0.7) for _ in range(2)]).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    sweep = scale_sweep(stack, x, [0.0, 0.5])
    assert float(sweep.max_residual_norm[0]) < 1e-12 < float(sweep.max_residual_norm[1])
    assert all(float(b.step) == 0.7 for b in stack)
