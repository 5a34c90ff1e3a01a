"""
When do patches add up? First order and interaction
===================================================

Fixes applied to a model one after the other, :math:`x \\leftarrow x + p_i(x)` (fine-tuning
deltas, edits, adapters), form a residual stack with step 1. Their combined effect is the sum
of the individual fixes only to first order:

.. math:: (I + A_2)(I + A_1) = I + A_1 + A_2 + A_2A_1 \\quad\\text{(linear patches)}, \\qquad
          x_2 = x + p_1(x) + p_2(x) + \\underbrace{p_2(x + p_1(x)) - p_2(x)}_{\\text{interaction}}.

:func:`manifres.stability.patch_interaction` splits the composed output into the identity, the
first order :math:`\\sum_i p_i(x)`, and the interaction, and measures the order dependence (the
change when the order is reversed: for two linear patches the commutator
:math:`(A_1A_2 - A_2A_1)x`). We use small two-layer patches
:math:`p_i(x) = \\varepsilon\\,U_i\\tanh(W_ix)` on 16 features and vary their size
:math:`\\varepsilon` and their number.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from manifres.stability import patch_interaction

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
d, hidden = 16, 32
gen = torch.Generator().manual_seed(0)
x = torch.randn(64, d, dtype=torch.float64, generator=gen)
weights = [
    (
        torch.randn(hidden, d, dtype=torch.float64, generator=gen) / d**0.5,
        torch.randn(d, hidden, dtype=torch.float64, generator=gen) / hidden**0.5,
    )
    for _ in range(8)
]


def patch(i: int, eps: float):
    w, u = weights[i]
    return lambda z: eps * torch.tanh(z @ w.T) @ u.T


def norm(t: torch.Tensor) -> float:
    return float(t.norm())


# %%
# Linear patches: the closed form
# -------------------------------
a1, a2 = (0.2 * torch.randn(d, d, dtype=torch.float64, generator=gen) for _ in range(2))
lin = patch_interaction([lambda z: z @ a1.T, lambda z: z @ a2.T], x)
err_inter = norm(lin.interaction - x @ (a2 @ a1).T)
err_comm = norm(lin.order_dependence - x @ (a1 @ a2 - a2 @ a1).T)

# %%
# Two patches of size epsilon
# ---------------------------
eps_grid = np.geomspace(1e-3, 1.0, 7 if QUICK else 13)
sizes = []
for eps in eps_grid:
    r = patch_interaction([patch(0, eps), patch(1, eps)], x)
    sizes.append((norm(r.first_order), norm(r.interaction), norm(r.order_dependence)))
sizes = np.array(sizes)
small = eps_grid <= 0.05
slopes = [np.polyfit(np.log(eps_grid[small]), np.log(sizes[small, j]), 1)[0] for j in range(3)]

# %%
# More patches at a fixed size
# ----------------------------
counts = range(1, 9)
eps0 = 0.1
relative = [patch_interaction([patch(i, eps0) for i in range(m)], x).relative_interaction for m in counts]
relative_order = [
    patch_interaction([patch(i, eps0) for i in range(m)], x).relative_order_dependence for m in counts
]

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
ax = axes[0]
labels = ("first order", "interaction", "order dependence")
for j, (lab, c) in enumerate(zip(labels, ("C0", "C3", "C2"), strict=True)):
    ax.loglog(eps_grid, sizes[:, j], "o-", color=c, label=f"{lab} (slope {slopes[j]:.2f})")
ax.set_xlabel(r"patch size $\varepsilon$")
ax.set_ylabel("Frobenius norm over the batch")
ax.set_title("two patches")
ax.legend()

ax = axes[1]
ax.plot(list(counts), relative, "o-", color="C3", label="|interaction| / |first order|")
ax.plot(list(counts), relative_order, "s-", color="C2", label="|order dependence| / |first order|")
ax.set_xlabel(f"number of patches (each of size {eps0:g})")
ax.set_title("many patches")
ax.legend()
fig.tight_layout()

# %%
# What the numbers show
# ---------------------
# For linear patches the interaction is :math:`A_2A_1x` and reversing the order changes the
# output by the commutator, to rounding. For small patches the first order grows like
# :math:`\\varepsilon` and both the interaction and the order dependence like
# :math:`\\varepsilon^2` (fitted slopes 1 and 2 below :math:`\\varepsilon = 0.05`): small fixes add
# up, and their order does not matter to first order. At a fixed size the relative interaction
# grows with the number of patches (the number of pairs grows faster than the number of patches);
# reversing one patch (``m = 1``) changes nothing.

assert err_inter < 1e-12 and err_comm < 1e-12
assert abs(slopes[0] - 1) < 0.02 and abs(slopes[1] - 2) < 0.05 and abs(slopes[2] - 2) < 0.05
assert np.all(np.diff(relative) > 0) and relative_order[0] == 0.0
assert sizes[-1, 1] / sizes[-1, 0] > 10 * sizes[0, 1] / sizes[0, 0]

SUMMARY = (
    f"two patches: |interaction| / |first order| = {sizes[0, 1] / sizes[0, 0]:.1e} at eps = "
    f"{eps_grid[0]:g}, {sizes[-1, 1] / sizes[-1, 0]:.2f} at eps = {eps_grid[-1]:g} (slopes "
    f"{slopes[0]:.2f}, {slopes[1]:.2f}, {slopes[2]:.2f}); {len(counts)} patches of size {eps0:g}: "
    f"{relative[-1]:.3f}; linear closed forms to {max(err_inter, err_comm):.0e}"
)
print(SUMMARY)
plt.show()
