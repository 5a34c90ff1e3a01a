"""
Anti-aligned gradients: where consecutive layers pull in opposite directions
=============================================================================

A residual block :math:`y = x + hF(x)` has the Jacobian :math:`I + hJ_F`. If :math:`J_F` has
a negative real eigenvalue :math:`-\\lambda`, the block's eigenvalue :math:`1 - h\\lambda`
crosses 0 at :math:`h = 1/\\lambda`: past it, the block flips that direction, and the gradient
that flows back through it flips too. :func:`manifres.stability.scale_sweep` reports the mean
cosine between consecutive layers' parameter gradients (``mean_grad_cosine``) and the
fraction of pairs with a negative cosine (``anti_aligned_fraction``).

We stack 12 blocks with *tied* (identical) branches whose Jacobian is symmetric with
eigenvalues :math:`-\\lambda_i \\in [-1.2, -0.8]`, around a fixed point :math:`c`:

* **affine**: :math:`F(x) = A(x - c)`, a linear layer with weight :math:`A` and bias
  :math:`-Ac`;
* **tanh**: :math:`F(x) = \\tanh(A(x - c))`, the same near :math:`c`, saturating far away;
* **scalar, no bias**: :math:`F(x) = -x` (bias-free, :math:`c = 0`), the control.

Why the control cannot anti-align: layer ``l``'s weight gradient is :math:`h\\,g_l x_{l-1}^T`
(:math:`g_l` the gradient at its output), and in the bias-free scalar stack
:math:`x_l = (1 - h)x_{l-1}` and :math:`g_l = (1 - h)g_{l+1}`, so
:math:`h\\,g_l x_{l-1}^T = h(1 - h)\\,g_{l+1}x_{l-1}^T = h\\,g_{l+1}x_l^T`: consecutive
gradients are *equal* (a sign flip of the forward state is undone by the flip of the backward
gradient), and the cosine is :math:`+1` at every step. With a bias (or an offset
:math:`c \\ne 0`) the forward states stay near :math:`c` and keep their sign while the backward
gradients alternate: the cosine turns negative.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from manifres.nn import Residual
from manifres.stability import scale_sweep

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
d, depth = 8, 12
gen = torch.Generator().manual_seed(0)
q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=gen))
lam = torch.linspace(0.8, 1.2, d, dtype=torch.float64)
A = -(q * lam) @ q.T
c = torch.randn(d, dtype=torch.float64, generator=gen)
x = c + 0.5 * torch.randn(32, d, dtype=torch.float64, generator=gen)
steps = np.geomspace(0.1, 4.0, 15 if QUICK else 41)


def tied_stack(kind: str) -> nn.Sequential:
    blocks = []
    for _ in range(depth):
        lin = nn.Linear(d, d, bias=kind != "scalar").double()
        with torch.no_grad():
            if kind == "scalar":
                lin.weight.copy_(-torch.eye(d, dtype=torch.float64))
            else:
                lin.weight.copy_(A)
                lin.bias.copy_(-A @ c)
        blocks.append(Residual(lin if kind != "tanh" else nn.Sequential(lin, nn.Tanh())))
    return nn.Sequential(*blocks)


# %%
# The step sweeps
# ---------------
kinds = ("affine", "tanh", "scalar")
sweeps = {
    k: scale_sweep(tied_stack(k), x if k != "scalar" else x - c, steps.tolist(), spectra=False) for k in kinds
}
cos = {k: sweeps[k].mean_grad_cosine.numpy() for k in kinds}
anti = {k: sweeps[k].anti_aligned_fraction.numpy() for k in kinds}
flip_any, flip_all, unstable = 1 / float(lam.max()), 1 / float(lam.min()), 2 / float(lam.max())

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
style = {"affine": ("C3", "o-"), "tanh": ("C1", "s-"), "scalar": ("C0", "^-")}
for ax, data, title in (
    (axes[0], cos, "mean cosine of consecutive gradients"),
    (axes[1], anti, "fraction anti-aligned"),
):
    ax.axvspan(flip_any, flip_all, color="0.8", label=r"some $1 - h\lambda_i < 0$")
    ax.axvspan(flip_all, steps[-1], color="0.93", label=r"all $1 - h\lambda_i < 0$")
    ax.axvline(unstable, color="0.4", ls=":", label=r"$h = 2/\lambda_{\max}$: $|1 - h\lambda| > 1$ beyond")
    for k in kinds:
        col, m = style[k]
        ax.semilogx(steps, data[k], m, color=col, ms=4, label=k)
    ax.axhline(0, color="0.6", lw=1)
    ax.set_xlabel("step h")
    ax.set_title(title)
axes[0].set_ylim(-1.05, 1.05)
axes[0].legend(fontsize=8, loc="lower left")
fig.tight_layout()

# %%
# What the numbers show
# ---------------------
# At small steps every pair of consecutive gradients is aligned (cosine near 1). The affine and
# tanh stacks anti-align only at steps past :math:`1/\\lambda_{\\max}`, where some eigenvalue
# :math:`1 - h\\lambda_i` of each block is negative: there the mean cosine turns negative and
# most pairs are anti-aligned. For the affine stack it ends before
# :math:`2/\\lambda_{\\max}`, beyond which :math:`1 - h\\lambda_{\\max} < -1`: the forward
# states themselves alternate and grow, the sign flips forward and backward cancel, and the
# gradients are aligned again. The tanh branch saturates, its forward states stay bounded, and
# the anti-alignment lasts to larger steps. The bias-free scalar control stays at cosine
# :math:`+1` at every step, as the argument above says.

neg = {k: steps[cos[k] < 0] for k in kinds}
assert all(cos[k][0] > 0.9 for k in kinds)
for k in ("affine", "tanh"):
    assert cos[k].min() < -0.5 and anti[k].max() > 0.8
    assert neg[k].min() > flip_any
assert neg["affine"].max() < unstable and cos["affine"][-1] > 0.5
assert neg["tanh"].max() > neg["affine"].max()
assert np.abs(cos["scalar"] - 1).max() < 1e-12 and anti["scalar"].max() == 0

worst = min(kinds, key=lambda k: cos[k].min())
at = int(np.argmin(cos[worst]))
SUMMARY = (
    f"most negative mean gradient cosine {cos[worst].min():.2f} ({worst}, h = {steps[at]:.2f}, "
    f"{anti[worst][at]:.0%} anti-aligned); affine {cos['affine'].min():.2f}, negative for h in "
    f"[{neg['affine'].min():.2f}, {neg['affine'].max():.2f}] (1/lambda_max = {flip_any:.2f}); "
    "bias-free scalar control: cosine 1 at every h"
)
print(SUMMARY)
plt.show()
