"""
Cardinality against width at equal parameter count
==================================================

A :class:`~manifres.nn.MultiBranchResidual` block (ResNeXt) splits its residual branch into
``C`` parallel bottlenecks of width ``b``,
:math:`y = x + h\\sum_{k=1}^{C} U_k\\sigma(T_k\\sigma(D_k x))`. With ``d`` features it has
about :math:`2dCb + Cb^2` parameters: at a fixed budget, more branches means narrower ones,
but the total inner width :math:`Cb` *grows*, because the :math:`C` transforms
:math:`T_k` (a block-diagonal matrix) cost :math:`Cb^2` instead of :math:`(Cb)^2`.

We fix the budget of one block with ``C = 1``, ``b = 64`` (``d = 64``), choose ``b`` for each
cardinality to match it, and measure (i) the branch Jacobian :math:`J_F` of one block (its
norm and numerical rank, by :func:`~manifres.stability.jacobian_spectrum` on ``block.branch``)
and (ii) a stack of such blocks with :func:`~manifres.stability.depth_profile`.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from manifres.nn import MultiBranchResidual
from manifres.stability import depth_profile, jacobian_spectrum

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
cardinalities = (1, 4, 16) if QUICK else (1, 2, 4, 8, 16, 32)
depth = 4 if QUICK else 12
d = 64
budget = MultiBranchResidual.count_parameters(d, 1, 64)
x = torch.randn(32, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def width_for(c: int) -> int:
    return min(range(1, 129), key=lambda b: abs(MultiBranchResidual.count_parameters(d, c, b) - budget))


# %%
# One block, and a stack
# ----------------------
rows = []
for c in cardinalities:
    b = width_for(c)
    torch.manual_seed(0)
    blocks = [MultiBranchResidual(d, c, b, step=1.0) for _ in range(depth)]
    stack = nn.Sequential(*blocks).double()
    sv = jacobian_spectrum(stack[0].branch, x).singular_values
    prof = depth_profile(stack, x)
    rows.append(
        {
            "C": c,
            "b": b,
            "params": MultiBranchResidual.count_parameters(d, c, b),
            "rank": float((sv > 1e-10 * sv[:, :1]).sum(-1).double().mean()),
            "branch_norm": float(sv[:, 0].mean()),
            "e": float(prof.residual_norms.max()),
            "log_smax": float(prof.log_sigma_max.mean()),
            "log_smin": float(prof.log_sigma_min.mean()),
            "grad0": float(prof.grad_norms[0]),
        }
    )
col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
param_gap = float(np.abs(col["params"] / budget - 1).max())

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
cs = np.array(cardinalities)
ax = axes[0]
ax.semilogx(cs, cs * col["b"], "o-", color="C2", label="inner width C b")
ax.semilogx(cs, col["rank"], "s-", color="C3", label=r"rank of $J_F$ (one block)")
ax.set_xticks(cs, [f"{c}\n(b={b})" for c, b in zip(cs, col["b"], strict=True)])
ax.minorticks_off()
ax.set_xlabel("cardinality C (branch width b)")
ax.set_title(f"equal parameters ({budget} per block, within {param_gap:.0%})")
ax.legend()

ax = axes[1]
ax.semilogx(cs, col["branch_norm"], "o-", color="C3", label=r"$\|J_F\|_2$ (one block)")
ax.semilogx(cs, col["e"], "s-", color="C1", label=r"$\max_l \|J_l - I\|_2$ (stack)")
ax.set_xticks(cs, [str(c) for c in cs])
ax.minorticks_off()
ax.set_ylim(0, 1.2 * max(col["e"].max(), col["branch_norm"].max()))
ax.set_xlabel("cardinality C")
ax.set_title("per-block Jacobians")
ax.legend()

ax = axes[2]
ax.semilogx(cs, col["log_smax"], "o-", color="C3", label=r"$\log\sigma_{\max}$ end to end")
ax.semilogx(cs, col["log_smin"], "o-", color="C0", label=r"$\log\sigma_{\min}$ end to end")
ax.semilogx(
    cs, np.log(col["grad0"]), "s-", color="C2", label=r"$\log\|\partial\mathcal{L}/\partial\theta_1\|$"
)
ax.axhline(0, color="0.6", lw=1)
ax.set_xticks(cs, [str(c) for c in cs])
ax.minorticks_off()
ax.set_xlabel("cardinality C")
ax.set_title(f"a {depth}-block stack")
ax.legend()
fig.tight_layout()

# %%
# What the numbers show
# ---------------------
# At an equal budget, splitting the branch widens it (:math:`Cb` grows) and raises the rank of
# each block's Jacobian above the single-branch block's, while the size of that Jacobian, the
# stack's end-to-end stretch and the first block's gradient stay within a factor 1.6 of each
# other over all cardinalities (the log singular values within 0.2): at initialisation,
# cardinality changes *how many directions* a block moves, not *how far* it moves them.

spread = {k: float(col[k].max() / col[k].min()) for k in ("branch_norm", "e", "grad0")}
assert param_gap < 0.06
assert np.all(cs[1:] * col["b"][1:] > cs[0] * col["b"][0])
assert col["rank"][1:].max() > col["rank"][0]
assert spread["branch_norm"] < 1.6 and spread["e"] < 1.6 and spread["grad0"] < 1.6
assert np.ptp(col["log_smax"]) < 0.2 and np.ptp(col["log_smin"]) < 0.2

best = int(np.argmax(col["rank"]))
SUMMARY = (
    f"{budget} parameters per block: C = 1 (b = {col['b'][0]}) rank of J_F {col['rank'][0]:.1f}, "
    f"C = {cs[best]} (b = {col['b'][best]}) rank {col['rank'][best]:.1f}; ||J_F|| spread "
    f"{spread['branch_norm']:.2f}x, first-block gradient spread {spread['grad0']:.2f}x over C = "
    f"{cs[0]}..{cs[-1]} ({depth} blocks)"
)
print(SUMMARY)
plt.show()
