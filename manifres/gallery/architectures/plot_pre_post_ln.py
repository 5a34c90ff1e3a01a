"""
Pre-LN against post-LN transformers: gradients through depth
============================================================

A :class:`~manifres.nn.TransformerBlock` adds attention and an MLP to its residual stream with
one step :math:`h`. With ``norm="pre"`` the LayerNorm sits inside each branch,
:math:`u = x + hA(\\mathrm{LN}(x))`, and the identity path runs untouched from the output back
to the input. With ``norm="post"`` (the original Transformer) every addition is followed by a
LayerNorm, :math:`u = \\mathrm{LN}(x + hA(x))`, so the backward pass goes through ``2 L``
LayerNorms, each dividing by the standard deviation of its input.

We build stacks of ``L`` blocks (torch's default initialisation, :math:`h = 1`, sequences of
8 tokens of width 16) and measure, with :func:`manifres.stability.depth_profile`, the gradient
norm of every block's parameters and, for the shallower stacks, the spectrum of the end-to-end
Jacobian (a sample is the whole ``(T, d)`` sequence: ``sample_ndim = 2``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from manifres.nn import TransformerBlock
from manifres.stability import depth_profile, jacobian_spectrum

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
depths = (2, 8, 32, 64) if QUICK else (2, 4, 8, 16, 32, 64, 128)
spectral_depths = (2, 4, 8) if QUICK else (2, 4, 8, 16)
T, d, heads = 8, 16, 2
x = torch.randn(4, T, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def stack(norm: str, depth: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*[TransformerBlock(d, heads, norm=norm) for _ in range(depth)]).double()


# %%
# Gradient norms, layer by layer
# ------------------------------
# ``grad_norms[l]`` is the norm of the loss gradient with respect to block ``l``'s parameters
# (the loss is a fixed random projection of the output). The ratio first / last block says
# whether the gradient grows or shrinks on its way back to the input.

profiles = {(n, L): depth_profile(stack(n, L), x, spectra=False) for n in ("pre", "post") for L in depths}
ratio = {
    n: np.array([float(profiles[n, L].grad_norms[0] / profiles[n, L].grad_norms[-1]) for L in depths])
    for n in ("pre", "post")
}

# %%
# Jacobian spectra
# ----------------
# The end-to-end Jacobian (128 x 128 per sequence) and one block's Jacobian. A LayerNorm's
# Jacobian annihilates, for every token, the constant direction and (the norm is scale
# invariant) the direction of its own input, so the post-LN block, which ends with one, has
# two zero singular values per token; the pre-LN block keeps the identity path.

spectral = {(n, L): depth_profile(stack(n, L), x) for n in ("pre", "post") for L in spectral_depths}
log_smax = {
    n: np.array([float(spectral[n, L].log_sigma_max.mean()) for L in spectral_depths])
    for n in ("pre", "post")
}
one_block = {n: jacobian_spectrum(stack(n, 1)[0], x) for n in ("pre", "post")}
zeros = {n: int((one_block[n].singular_values[0] < 1e-9).sum()) for n in ("pre", "post")}

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
ax = axes[0]
L = depths[-1]
for n, c in (("pre", "C0"), ("post", "C3")):
    ax.semilogy(np.arange(1, L + 1), profiles[n, L].grad_norms, color=c, label=f"{n}-LN")
ax.set_xlabel("block l (1 = input side)")
ax.set_ylabel(r"$\|\partial \mathcal{L} / \partial \theta_l\|$")
ax.set_title(f"gradient of every block, {L}-block stacks")
ax.legend()

ax = axes[1]
for n, c in (("pre", "C0"), ("post", "C3")):
    ax.loglog(depths, ratio[n], "o-", color=c, label=f"{n}-LN")
ax.axhline(1, color="0.6", lw=1)
ax.set_xticks(depths, [str(L) for L in depths], minor=False)
ax.minorticks_off()
ax.set_xlabel("depth L")
ax.set_ylabel("first block / last block gradient norm")
ax.set_title("does the gradient reach the input?")
ax.legend()

ax = axes[2]
for n, c in (("pre", "C0"), ("post", "C3")):
    ax.semilogx(
        spectral_depths,
        log_smax[n] / np.log(10),
        "o-",
        color=c,
        label=rf"{n}-LN, $\log_{{10}}\sigma_{{\max}}$",
    )
ax.set_xticks(spectral_depths, [str(L) for L in spectral_depths])
ax.minorticks_off()
ax.set_xlabel("depth L")
ax.set_ylabel(r"$\log_{10}\sigma_{\max}$ of the end-to-end Jacobian")
ax.set_title(f"one block: {zeros['post']} zero singular values post-LN, {zeros['pre']} pre-LN")
ax.legend()
fig.tight_layout()

# %%
# What the numbers show
# ---------------------
# In the pre-LN stacks the first block's gradient is *larger* than the last block's, and the
# ratio grows with depth (every block adds its branch to the identity path on the way back). In
# the post-LN stacks the ratio falls below 1 as the stack deepens: the gradient shrinks on its
# way to the input. The end-to-end Jacobian stretches more with depth in pre-LN than in
# post-LN, and a post-LN block is singular (two zero singular values per token).

assert ratio["pre"][-1] > 1 and ratio["pre"][-1] > ratio["pre"][0]
assert ratio["post"][-1] < 0.5 * ratio["post"][0] and ratio["post"][-1] < 1
assert log_smax["pre"][-1] > log_smax["post"][-1]
assert np.all(np.diff(log_smax["pre"]) > 0)
assert zeros["post"] == 2 * T and zeros["pre"] == 0

SUMMARY = (
    f"first/last block gradient at depth {depths[-1]}: pre-LN {ratio['pre'][-1]:.2f}, post-LN "
    f"{ratio['post'][-1]:.2f} (pre/post {ratio['pre'][-1] / ratio['post'][-1]:.1f}x); end-to-end "
    f"sigma_max at depth {spectral_depths[-1]}: pre 1e{log_smax['pre'][-1] / np.log(10):.2f}, "
    f"post 1e{log_smax['post'][-1] / np.log(10):.2f}; a post-LN block has {zeros['post']} zero "
    "singular values"
)
print(SUMMARY)
plt.show()
