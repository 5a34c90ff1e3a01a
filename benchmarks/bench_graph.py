"""Graph diffusion benchmark: one step ``x - alpha L_sym x`` against the peers, and certificates.

Rows
----
1. One diffusion step on random graphs (a ring plus random chords, average degree 10) with
   ``N`` nodes and feature width ``F``, every implementation starting from its own prebuilt
   normalised operator:

   * ``manifres``: :class:`manifres.graph.LaplacianResidual` with ``cached=True`` (one CSR
     product and one fused ``lerp``),
   * ``manifres-uncached``: the same layer without a cache (normalisation and message passing
     at every call, differentiable in the weights),
   * ``pyg-MessagePassing``: a minimal torch-geometric ``MessagePassing`` layer with the
     normalised weights (gather, scale, scatter-add) and a fused ``lerp``,
   * ``pyg-spmm``: ``torch_geometric.utils.spmm`` on a torch CSR tensor (``coalesce()`` then
     ``to_sparse_csr()``: int64 indices), then ``lerp``,
   * ``torch-csr``: ``torch.sparse.mm`` on the same CSR tensor, then ``lerp``,
   * ``torch-csr-int32``: the same with int32 CSR indices (what manifres builds),
   * ``scipy``: ``scipy.sparse.csr_matrix @ x`` and an in-place NumPy update (CPU only).

   Implementations run round-robin in a shuffled order per round (so that load changes and
   cache footprints hit all of them alike); the table gives median milliseconds and the ratio
   to the fastest.
2. ``lambda_max`` of ``L`` and ``L_sym`` on a ``1e5``-node graph: manifres (Lanczos) against
   ``scipy.sparse.linalg.eigsh``.
3. The stability certificate (``lambda_max``, and with the Fiedler value) of a ``1e6``-node
   graph.

Usage::

    python benchmarks/bench_graph.py            # full sizes: 1e4, 1e5, 1e6 nodes
    python benchmarks/bench_graph.py --quick    # small sizes, a few seconds
    python benchmarks/bench_graph.py --device cuda --threads 2

Large eager ops on CPU are dominated by page faults on fresh memory; ``THP_MEM_ALLOC_ENABLE=1``
in the environment (torch's transparent huge pages) speeds every implementation up.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings

import numpy as np
import torch
from torch_geometric.utils import spmm  # noqa: E402  (after manifres.graph's guarded import)

import manifres.graph as G
from manifres.graph._pyg import MessagePassing


class _PygStep(MessagePassing):
    """The idiomatic torch-geometric layer: messages ``w * x_j``, sum, ``lerp`` update."""

    def __init__(self, alpha: float) -> None:
        super().__init__(aggr="add")
        self.alpha = alpha

    def forward(self, x, edge_index, weight):
        return torch.lerp(x, self.propagate(edge_index, x=x, weight=weight), self.alpha)

    def message(self, x_j, weight):
        return weight.unsqueeze(-1) * x_j


def random_graph(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Ring plus ``4 n`` random chords, both directions: ``10 n`` entries, no isolated node."""
    g = torch.Generator().manual_seed(seed)
    a = torch.arange(n)
    r = torch.cat([a, torch.randint(0, n, (4 * n,), generator=g)])
    c = torch.cat([torch.roll(a, -1), torch.randint(0, n, (4 * n,), generator=g)])
    return torch.cat([torch.stack([r, c]), torch.stack([c, r])], dim=1).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_round_robin(fns: dict, repeats: int, device: torch.device) -> dict:
    """Median seconds per implementation; each round runs all of them in a shuffled order
    (so that no implementation always follows the same one, with its cache footprint)."""
    for f in fns.values():  # warm-up (and the manifres cache / validation)
        f()
    _sync(device)
    times = {k: [] for k in fns}
    order = list(fns)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for k in order:
            _sync(device)
            t = time.perf_counter()
            fns[k]()
            _sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_step(n: int, widths, repeats: int, device: torch.device, names, alpha: float = 0.5):
    ei = random_graph(n, device)
    parts = G.laplacian_parts(ei, num_nodes=n, normalization="sym")
    # the idiomatic torch CSR (int64 indices), and the same with int32 indices
    A = torch.sparse_coo_tensor(parts.edge_index, parts.weight, (n, n), check_invariants=False)
    A = A.coalesce().to_sparse_csr()
    A32 = torch.sparse_csr_tensor(
        A.crow_indices().int(), A.col_indices().int(), A.values(), (n, n), check_invariants=False
    )
    pyg = _PygStep(alpha)
    cached = G.LaplacianResidual(alpha, "sym", cached=True)
    uncached = G.LaplacianResidual(alpha, "sym", validate=False)
    S = None
    if device.type == "cpu":
        import scipy.sparse as sp

        crow, col = A.crow_indices().numpy(), A.col_indices().numpy()
        S = sp.csr_matrix((A.values().numpy(), col, crow), shape=(n, n))
    for f in widths:
        x = torch.randn(n, f, device=device)
        xn = x.cpu().numpy() if S is not None else None

        def scipy_step(x=xn):
            y = S @ x
            y *= alpha
            y += (1.0 - alpha) * x
            return y

        fns = {
            "manifres": lambda x=x: cached(x, ei),
            "manifres-uncached": lambda x=x: uncached(x, ei),
            "pyg-MessagePassing": lambda x=x: pyg(x, ei, parts.weight),
            "pyg-spmm": lambda x=x: torch.lerp(x, spmm(A, x), alpha),
            "torch-csr": lambda x=x: torch.lerp(x, torch.sparse.mm(A, x), alpha),
            "torch-csr-int32": lambda x=x: torch.lerp(x, torch.sparse.mm(A32, x), alpha),
        }
        if S is not None:
            fns["scipy"] = scipy_step
        ref = cached(x, ei)
        for name in ("pyg-MessagePassing", "pyg-spmm", "torch-csr", "torch-csr-int32"):
            torch.testing.assert_close(fns[name](), ref, rtol=1e-4, atol=1e-5)
        if S is not None:
            np.testing.assert_allclose(scipy_step(), ref.numpy(), rtol=1e-4, atol=1e-5)
        med = _time_round_robin(fns, repeats, device)
        print_step_row(n, f, med, names)
        del x, xn


NAMES = [
    "manifres",
    "manifres-uncached",
    "pyg-MessagePassing",
    "pyg-spmm",
    "torch-csr",
    "torch-csr-int32",
    "scipy",
]


def print_step_header(names) -> None:
    head = f"{'N':>9} {'F':>3} " + " ".join(f"{k:>20}" for k in names)
    print(head)
    print("-" * len(head), flush=True)


def print_step_row(n: int, f: int, med: dict, names) -> None:
    best = min(med.values())
    cells = " ".join(
        f"{med[k] * 1e3:>10.2f}ms ({med[k] / best:4.2f})" if k in med else f"{'-':>20}"
        for k in names
    )
    print(f"{n:>9.0e} {f:>3} {cells}", flush=True)


def bench_lambda_max(n: int, device: torch.device) -> None:
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    ei = random_graph(n, device, seed=1)
    print(f"\nlambda_max on a {n:.0e}-node graph ({ei.shape[1]} entries)")
    for normalization in (None, "sym"):
        w = torch.ones(ei.shape[1], dtype=torch.float64, device=device)
        t = time.perf_counter()
        lam = float(G.lambda_max(ei, w, num_nodes=n, normalization=normalization))
        t_m = time.perf_counter() - t
        L = G.laplacian(ei.cpu(), w.cpu(), num_nodes=n, normalization=normalization)
        idx = L.indices().numpy()
        S = sp.csr_matrix((L.values().numpy(), (idx[0], idx[1])), shape=(n, n))
        t = time.perf_counter()
        ref = float(sla.eigsh(S, k=1, which="LA", return_eigenvectors=False)[0])
        t_s = time.perf_counter() - t
        print(
            f"  {str(normalization):>4}: manifres {t_m:7.2f} s  scipy eigsh {t_s:7.2f} s  "
            f"(ratio {t_m / t_s:4.2f})  lambda_max {lam:.10g} vs {ref:.10g}  "
            f"rel diff {abs(lam - ref) / ref:.1e}"
        )


def bench_certificate(n: int, device: torch.device) -> None:
    ei = random_graph(n, device, seed=2)
    print(f"\nstability certificate of a {n:.0e}-node graph ({ei.shape[1]} entries), 'sym'")
    for fiedler in (False, True):
        t = time.perf_counter()
        c = G.stability_certificate(0.5, ei, num_nodes=n, normalization="sym", fiedler=fiedler)
        dt = time.perf_counter() - t
        extra = f", lambda_2 {c.lambda_2:.6g}, rate {c.rate:.6g}" if fiedler else ""
        print(
            f"  fiedler={fiedler!s:>5}: {dt:7.2f} s  lambda_max {c.lambda_max:.8g}, "
            f"max step {c.max_step:.6g}{extra}"
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per row")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--sizes", type=float, nargs="+", help="node counts of the step table")
    p.add_argument("--widths", type=int, nargs="+", default=[1, 16, 64], help="feature widths")
    p.add_argument("--skip-step", action="store_true", help="skip the diffusion-step table")
    p.add_argument("--skip-spectral", action="store_true", help="skip lambda_max, certificate")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    sizes = [1_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    sizes = [int(n) for n in args.sizes] if args.sizes else sizes
    widths = args.widths
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"float32, alpha 0.5, normalization 'sym', average degree 10"
    )
    if not args.skip_step:
        names = NAMES if device.type == "cpu" else NAMES[:-1]
        print()
        print_step_header(names)
        for n in sizes:
            repeats = args.repeats or (21 if n <= 100_000 else 7)
            bench_step(n, widths, repeats, device, names)
        print("(median milliseconds; in brackets the ratio to the fastest in the row)")
    if not args.skip_spectral:
        bench_lambda_max(10_000 if args.quick else 100_000, device)
        bench_certificate(100_000 if args.quick else 1_000_000, device)


if __name__ == "__main__":
    main()
