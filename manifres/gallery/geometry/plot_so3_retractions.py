"""
Retractions on SO(3): accuracy against cost
===========================================

A step on the rotation group moves :math:`R` along a tangent vector :math:`V = R\\,\\Omega`
(:math:`\\Omega` skew). The exponential map :math:`R\\,\\exp(\\Omega)` is exact; cheaper
**retractions** agree with it only to some order in the step :math:`h`:

* Cayley :math:`R\\,(I - \\Omega/2)^{-1}(I + \\Omega/2)` and polar
  :math:`R\\,(I + \\Omega)(I - \\Omega^2)^{-1/2}` to second order (one-step defect
  :math:`O(h^3)`);
* QR, :math:`R\\,\\operatorname{qf}(I + \\Omega)`, to first order only (defect :math:`O(h^2)`).

:class:`manifres.SpecialOrthogonal` offers all four through ``retract(x, v, method)``. We
measure the defect of each retraction against the exponential map, the error of an Euler
integration of a constant rotation (exact solution known), and the time of one batched call.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import manifres
from manifres.flows import problems

QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
torch.manual_seed(0)
G = manifres.SpecialOrthogonal(3)
methods = G.retractions  # ("exp", "cayley", "qr", "polar")
colors = dict(zip(methods, ("k", "C0", "C3", "C2"), strict=True))

# %%
# One-step defect against the exponential map
# -------------------------------------------
# :func:`~manifres.flows.problems.retraction_defect` returns
# :math:`\max\|R_x(hv) - \exp_x(hv)\|_F` over a batch and the fitted slope in :math:`h`.

x = G.random(256, dtype=torch.float64)
v = G.random_tangent(x)
v = v / G.norm(x, v)[..., None, None]  # unit-speed directions
hs = tuple(np.geomspace(0.01, 1.0, 6 if QUICK else 11))
defects = {m: problems.retraction_defect(G, x, v, m, hs=hs) for m in methods[1:]}

# %%
# Integration error: Euler steps of a constant rotation
# -----------------------------------------------------
# :func:`~manifres.flows.problems.so3_constant` is :math:`R' = R\\hat w` with the exact
# solution :math:`R_0\\exp(t\\hat w)`. Retraction Euler with the exponential map is exact on
# it; the other retractions leave an error that depends on their order.

p = problems.so3_constant(dtype=torch.float64)
steps = 20
int_err = {m: problems.global_error(p, "euler", steps, retraction=m) for m in methods}

# %%
# Cost of one batched call
# ------------------------
# The best of several timed calls on a batch of float32 rotations (the machine may be busy;
# the best time is the least disturbed).

batch = 4_000 if QUICK else 50_000
repeats = 3 if QUICK else 7
xb = G.random(batch)
vb = 0.3 * G.random_tangent(xb)
times = {m: [] for m in methods}
for _ in range(repeats):  # alternate the methods so that load hits all of them alike
    for m in methods:
        t0 = time.perf_counter()
        G.retract(xb, vb, m)
        times[m].append(time.perf_counter() - t0)
cost = {m: 1e6 * min(ts) / batch for m, ts in times.items()}  # microseconds per rotation

# %%
# The figure
# ----------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
for m, row in defects.items():
    ax1.loglog(row.steps, row.errors, "o-", color=colors[m], label=f"{m}: slope {row.slope:.2f}")
h = np.asarray(hs)
ax1.loglog(h, 0.1 * h**3, "k:", lw=1, label="$h^3$, $h^2$ guides")
ax1.loglog(h, 0.3 * h**2, "k:", lw=1)
ax1.set_xlabel("step h (unit tangent direction)")
ax1.set_ylabel(r"$\max\|R_x(hv) - \exp_x(hv)\|_F$")
ax1.set_title("one-step defect against the exponential map")
ax1.legend(fontsize=9)

floor = 1e-16
for m in methods:
    e = max(int_err[m], floor)
    ax2.semilogy(cost[m], e, "o", ms=10, color=colors[m])
    ax2.annotate(f"  {m}", (cost[m], e), fontsize=10, va="center")
ax2.set_xlabel(f"cost: microseconds per rotation (best of {repeats}, batch {batch:,}, float32)")
ax2.set_ylabel(f"error after {steps} Euler steps of $R' = R\\hat w$")
ax2.set_title("accuracy against cost")
ax2.set_xlim(0, max(cost.values()) * 1.3)
ax2.set_ylim(floor / 10, 1)
fig.tight_layout()

# %%
# Summary
# -------
# The exponential map is exact and, with Rodrigues' closed form, not much dearer than the
# retractions on SO(3); QR is the least accurate (first order); Cayley and polar are second
# order. On :math:`SO(n)` with large :math:`n`, where the exponential needs
# ``torch.linalg.matrix_exp``, the retractions' advantage in cost grows.
slopes = ", ".join(f"{m} {r.slope:.2f}" for m, r in defects.items())
SUMMARY = f"defect slopes {slopes}; Euler error after {steps} steps: " + ", ".join(
    f"{m} {int_err[m]:.0e}" for m in methods
)
print(SUMMARY)
for m in methods:
    print(f"{m:7s} {cost[m]:.3f} us per rotation")
assert abs(defects["cayley"].slope - 3) < 0.2 and abs(defects["qr"].slope - 2) < 0.2
plt.show()
