"""
The residual scale as a volume knob
===================================

A residual block :math:`y = x + a F(x)` has the Jacobian :math:`I + a J_F`, whose eigenvalues
are :math:`1 + a\\lambda_i(J_F)`: the scale :math:`a` turns the spectrum of the branch up or
down around the identity's single eigenvalue 1, like a volume knob. At small :math:`a` every
block is a gentle perturbation of the identity, the stack behaves like a smooth flow (an Euler
discretisation of an ODE) and the layers' gradients agree with each other; at large
:math:`a` the eigenvalues spread far from 1, the end-to-end Jacobian stretches and crushes by
orders of magnitude, and consecutive layers' gradients start to point in different,
eventually opposite, directions.

:func:`manifres.stability.jacobian_spectrum` gives the eigenvalues of one block and
:func:`manifres.stability.scale_sweep` turns the knob on a whole stack.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from manifres.nn import Residual, residual_mlp
from manifres.stability import jacobian_spectrum, scale_sweep

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
torch.manual_seed(0)
width = 16

# %%
# One block: eigenvalues of I + a J_F
# -----------------------------------
# The same branch :math:`F(x) = \\tanh(Wx + b)` under four scales, linearised at one input.

branch = nn.Sequential(nn.Linear(width, width), nn.Tanh()).double()
x1 = torch.randn(1, width, dtype=torch.float64)
knob = (0.25, 0.5, 1.0, 2.0)
spectra = {a: jacobian_spectrum(Residual(branch, step=a), x1) for a in knob}

# %%
# A stack: turning the knob
# -------------------------
# A 30-layer stack of such blocks (:func:`~manifres.nn.residual_mlp`); ``scale_sweep`` sets
# every block's scale in turn and profiles the stack.

depth = 15 if QUICK else 30
stack = residual_mlp(width, depth).double()
x = torch.randn(32, width, dtype=torch.float64)
scales = np.geomspace(0.01, 5.0, 8 if QUICK else 16)
sweep = scale_sweep(stack, x, scales.tolist())

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
ax = axes[0]
t = np.linspace(0, 2 * np.pi, 200)
ax.plot(np.cos(t), np.sin(t), color="0.7", lw=1, label="unit circle")
for a, c in zip(knob, ("C0", "C2", "C1", "C3"), strict=True):
    ev = spectra[a].eigenvalues[0].numpy()
    ax.plot(ev.real, ev.imag, "o", color=c, ms=5, label=f"a = {a:g}")
ax.plot([1], [0], "k+", ms=14, mew=2)
ax.set_aspect("equal")
ax.set_xlabel("Re")
ax.set_ylabel("Im")
ax.set_title("eigenvalues of $I + a\\,J_F$ (one block)")
ax.legend(fontsize=8, loc="lower left")

ax = axes[1]
ln10 = np.log(10)
ax.semilogx(scales, sweep.log_upper_bound / ln10, "C3--", label=r"bound $\log_{10}\prod(1 + e_l)$")
ax.semilogx(scales, sweep.log_sigma_max / ln10, "C3o-", ms=4, label=r"$\log_{10}\sigma_{\max}$ end to end")
ax.semilogx(scales, sweep.log_sigma_min / ln10, "C0o-", ms=4, label=r"$\log_{10}\sigma_{\min}$ end to end")
ax.axhline(0, color="0.7", lw=1)
ax.set_xlabel("residual scale a")
ax.set_ylabel(r"$\log_{10}$ of the end-to-end stretch")
ax.set_title(f"a {depth}-layer stack: stretch and crush")
ax.legend(fontsize=8)

ax = axes[2]
ax.semilogx(
    scales, sweep.mean_grad_cosine, "o-", color="C2", label="mean cosine of consecutive layers' gradients"
)
ax.semilogx(scales, sweep.anti_aligned_fraction, "s-", color="C3", label="fraction of anti-aligned pairs")
ax.set_ylim(-0.05, 1.05)
ax.set_xlabel("residual scale a")
ax.set_title("gradient alignment across layers")
ax.legend(fontsize=8, loc="center left")
fig.tight_layout()

# %%
# Summary
# -------
# The eigenvalues move away from 1 in proportion to :math:`a`; the stack's stretch follows,
# far inside its Weyl bound at small :math:`a`; and the layers' gradients lose their agreement
# as the knob goes up.
cos = sweep.mean_grad_cosine
SUMMARY = (
    f"a from {scales[0]:g} to {scales[-1]:g}: max |a J_F| {float(sweep.max_residual_norm[0]):.3f} -> "
    f"{float(sweep.max_residual_norm[-1]):.2f}, gradient cosine {float(cos[0]):.2f} -> {float(cos[-1]):.2f}, "
    f"anti-aligned pairs {float(sweep.anti_aligned_fraction[-1]):.0%} at a = {scales[-1]:g}"
)
print(SUMMARY)
assert float(cos[-1]) < float(cos[0])
plt.show()
