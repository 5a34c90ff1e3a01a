"""Lie-group integrators in high dimension: one RKMK4 (and RKMK2, CG2, CF4) step against one
Euler step on ``Sphere(n)``, batch ``B`` (issue 10 item 5).

The Lie-group steps on ``S^n`` work in the span of the stage vectors
(:class:`manifres.manifolds.actions.SphereSubspace`: a basis of at most 5 columns, 5 x 5
``matrix_exp``), so their cost is the field evaluations plus :math:`O(B n)` per stage. The
dense path (one ``(n+1) x (n+1)`` ``matrix_exp`` per exponential, the implementation before
0.2.0) is timed once per row with ``--dense`` for reference.

Fields (``--field``):

* ``linear``: :math:`F(x) = W x` with a dense random ``W`` (``(n+1)^2`` work per evaluation),
* ``mlp``: :math:`F(x) = W_2 \\tanh(W_1 x)` with hidden width ``n+1``,
* ``diag``: :math:`F(x) = a \\odot \\sin(x)` (``O(n)`` work: the overhead of the schemes shows).

All methods run round-robin (medians of interleaved runs, :mod:`benchmarks._timing`); the
table gives milliseconds per step and the ratio to Euler (target: RKMK4 / Euler <= 10 at
``n = 399``, ``B = 256``).

Usage::

    python benchmarks/bench_integrators.py                  # n = 399, B = 256, all fields
    python benchmarks/bench_integrators.py --quick          # fewer repeats, linear field
    python benchmarks/bench_integrators.py -n 99 399 -B 64 256 --dense --dtype float32
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved  # noqa: E402

import manifres  # noqa: E402
from manifres.flows import get_stepper  # noqa: E402
from manifres.manifolds.actions import SphereRotation  # noqa: E402

METHODS = ("euler", "rkmk2", "rkmk4", "cg2", "cf4")


class _DenseRotation(SphereRotation):
    """The dense reference: no low-rank ``local`` action (one big matrix_exp per exponential)."""

    local = None


def make_field(kind: str, dim: int, dtype: torch.dtype, device: str):
    g = torch.Generator().manual_seed(0)
    W1 = (torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim**0.5).to(dtype).to(device)
    W2 = (torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim**0.5).to(dtype).to(device)
    a = torch.randn(dim, generator=g, dtype=torch.float64).to(dtype).to(device)
    if kind == "linear":
        return lambda x: x @ W1.mT
    if kind == "mlp":
        return lambda x: torch.tanh(x @ W1.mT) @ W2.mT
    if kind == "diag":
        return lambda x: a * torch.sin(x)
    raise SystemExit(f"unknown field {kind!r}")


def bench_row(n: int, B: int, field_kind: str, dtype, device: str, repeat: int, dense: bool) -> dict:
    S = manifres.Sphere(n)
    x = S.random(B, dtype=dtype, device=device, generator=torch.Generator().manual_seed(1))
    field = make_field(field_kind, n + 1, dtype, device)
    h = 0.05
    fns = {}
    for m in METHODS:
        step = get_stepper(S, m)
        fns[m] = (lambda step=step: step(field, x, 0.0, h, time_dependent=False))
    with torch.no_grad():
        times = interleaved(fns, repeat, device)
        row = {"n": n, "B": B, "field": field_kind, **times}
        if dense:  # once: too slow to interleave
            step = get_stepper(S, "rkmk4")
            step.action = _DenseRotation()
            row["rkmk4-dense"] = interleaved({"d": lambda: step(field, x, 0.0, h, False)}, 1, device)["d"]
            row["max |dense - low-rank|"] = float(
                (step(field, x, 0.0, h, False) - fns["rkmk4"]()).abs().max()
            )
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, nargs="+", default=[399], help="sphere dimensions")
    ap.add_argument("-B", type=int, nargs="+", default=[256], help="batch sizes")
    ap.add_argument("--field", nargs="+", default=None, choices=["linear", "mlp", "diag"])
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--dense", action="store_true", help="also time the dense matrix_exp path once")
    ap.add_argument("--quick", action="store_true", help="linear field, 10 repeats")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = args.field or (["linear"] if args.quick else ["linear", "mlp", "diag"])
    repeat = args.repeat or (10 if args.quick else 50)
    dtype = getattr(torch, args.dtype)
    rows = [
        bench_row(n, B, f, dtype, args.device, repeat, args.dense)
        for n in args.n
        for B in args.B
        for f in fields
    ]
    head = ["n", "B", "field", *(f"{m} (ms)" for m in METHODS), *(f"{m} / euler" for m in METHODS[1:])]
    if args.dense:
        head += ["rkmk4-dense (ms)", "rkmk4-dense / euler", "max |dense - low-rank|"]
    print(f"\none step on Sphere(n), {args.dtype}, {args.device}, {torch.get_num_threads()} threads\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [str(r["n"]), str(r["B"]), r["field"]]
        cells += [f"{1e3 * r[m]:.3g}" for m in METHODS]
        cells += [f"{r[m] / r['euler']:.2f}" for m in METHODS[1:]]
        if args.dense:
            cells += [f"{1e3 * r['rkmk4-dense']:.4g}", f"{r['rkmk4-dense'] / r['euler']:.0f}",
                      f"{r['max |dense - low-rank|']:.1e}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
