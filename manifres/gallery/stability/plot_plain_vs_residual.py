"""
Plain against residual: the vanishing gradient
==============================================

Train a deep stack of :math:`\\tanh` layers and the gradient that reaches the first layer is a
product of :math:`L` layer Jacobians. In a **plain** stack, :math:`h_l = \\tanh(W_l h_{l-1} +
b_l)`, each Jacobian shrinks vectors (the default initialisation keeps
:math:`\\|W_l\\|` near 1 and :math:`\\tanh' \\le 1`), so the gradient vanishes exponentially with
depth: after a few hundred layers it is below :math:`10^{-100}`, and the first layers never
learn.

A **residual** stack, :math:`h_l = h_{l-1} + a\\tanh(W_l h_{l-1} + b_l)`, has Jacobians
:math:`I + a J_l`: the identity path carries the gradient back unchanged, and the residual
branches only perturb it (by at most :math:`(1 + e)^L`, see the Weyl-band example). We measure
both with :func:`manifres.stability.compare_plain_residual`, which uses the same weights for
both stacks and a renormalised backward pass, so that even :math:`10^{-250}` is measured, not
rounded to zero.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from manifres.nn import plain_mlp, residual_mlp
from manifres.stability import compare_plain_residual, depth_profile

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
depths = (1, 2, 5, 10, 20, 50, 100, 200) if QUICK else (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
width = 32

# %%
# First-layer gradient norm against depth
# ---------------------------------------
# Two residual scales: :math:`a = 1` (the classical ResNet) and :math:`a = 0.1` (a small
# step, as in a discretised ODE).

cmp = {a: compare_plain_residual(depths=depths, width=width, step=a) for a in (1.0, 0.1)}

# %%
# Where along the stack the gradient dies
# ---------------------------------------
# :func:`~manifres.stability.depth_profile` gives the gradient norm for every layer's
# parameters. :func:`~manifres.nn.plain_mlp` and :func:`~manifres.nn.residual_mlp` build the
# two 100-layer stacks with identical weights (same seed).

L = 100
x = torch.randn(16, width, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
torch.manual_seed(0)
plain = plain_mlp(width, L).double()
torch.manual_seed(0)
resid = residual_mlp(width, L, step=0.1).double()
prof_plain = depth_profile(plain, x, spectra=False)
prof_resid = depth_profile(resid, x, spectra=False)

# %%
# The figure
# ----------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
ax1.semilogx(depths, cmp[1.0].plain_log10_grad_norm, "o-", color="k", label="plain")
for a, c in ((1.0, "C3"), (0.1, "C0")):
    ax1.semilogx(depths, cmp[a].residual_log10_grad_norm, "s-", color=c, label=f"residual, a = {a:g}")
ax1.axhline(np.log10(np.finfo(np.float64).tiny), color="0.5", ls=":", lw=1)
ax1.text(depths[0], np.log10(np.finfo(np.float64).tiny) + 5, "smallest float64", color="0.4", fontsize=8)
ax1.set_xlabel("depth L")
ax1.set_ylabel(r"$\log_{10}$ first-layer gradient norm")
ax1.set_title(f"gradient at the first layer (width {width}, tanh)")
ax1.legend()

layers = np.arange(1, L + 1)
ax2.plot(layers, prof_plain.log10_grad_norms, color="k", label="plain")
ax2.plot(layers, prof_resid.log10_grad_norms, color="C0", label="residual, a = 0.1")
ax2.set_xlabel("layer l (1 = input side)")
ax2.set_ylabel(r"$\log_{10}\,\|\partial \mathcal{L} / \partial \theta_l\|$")
ax2.set_title(f"gradient of every layer, {L}-layer stacks")
ax2.legend()
fig.tight_layout()

# %%
# Summary
# -------
# The plain stack's first-layer gradient falls by about one decade every four layers; the
# residual stacks keep it of order one (with :math:`a = 1` it even grows slowly, within the
# Weyl bound).
deepest = depths[-1]
SUMMARY = (
    f"first-layer gradient at depth {deepest}: plain 1e{float(cmp[1.0].plain_log10_grad_norm[-1]):.0f}, "
    f"residual 1e{float(cmp[1.0].residual_log10_grad_norm[-1]):.1f} (a=1), "
    f"1e{float(cmp[0.1].residual_log10_grad_norm[-1]):.1f} (a=0.1)"
)
print(SUMMARY)
assert float(cmp[1.0].plain_log10_grad_norm[-1]) < -20 < float(cmp[0.1].residual_log10_grad_norm[-1])
plt.show()
