"""Graph diffusion benchmark: one step ``x - h L_sym x`` against the peers, and the spectra.

Rows
----
1. One diffusion step on a random graph (a ring plus random chords, average degree 10, no
   isolated node) with ``N`` nodes and feature width ``F``, CPU float32, at each thread count:

   * ``manifres``: :class:`manifres.graph.LaplacianResidual` **with default arguments**, called
     again and again on the same graph (its cached operator: one CSR product),
   * ``manifres-grad-w``: the same layer with edge weights that require a gradient
     (normalisation at every call, product on the cached CSR pattern; forward only),
   * ``manifres-uncached``: ``cached=False`` (normalisation and message passing at every call),
   * ``pyg-MessagePassing``: a minimal torch-geometric ``MessagePassing`` layer with
     precomputed normalised weights (``propagate``: gather, scale, scatter-add) and ``lerp``,
   * ``pyg-spmm``: ``torch_geometric.utils.spmm`` on a torch CSR tensor (``coalesce()`` then
     ``to_sparse_csr()``: int64 indices), then ``lerp``,
   * ``torch-csr``: ``torch.sparse.mm`` on the same CSR tensor, then ``lerp``,
   * ``torch-csr-int32``: the same with int32 CSR indices,
   * ``scipy``: ``scipy.sparse.csr_matrix @ x`` and an in-place NumPy update (CPU only).

   The peers start from their own prebuilt operator. Implementations run round-robin in a
   shuffled order per round (load changes hit all of them alike); the table gives median
   milliseconds and the ratio to the fastest. The target: ``manifres`` within 1.2x of the
   fastest at every ``F``, and ``manifres-grad-w`` no slower than ``pyg-MessagePassing``.
2. ``lambda_max`` of ``L`` and ``L_sym`` (manifres: validation, operator and Lanczos) against
   ``scipy.sparse.linalg.eigsh`` on the prebuilt SciPy matrix.
3. ``lambda_max``, ``lambda_2`` and the stability certificate on an Erdos-Renyi graph (mean
   degree 10), a ring and a 2-D grid (seconds per call; rings and grids do not converge, and
   the certificate then decides from bounds that hold).

Usage::

    python benchmarks/bench_graph.py            # 1e6 nodes, F = 1, 16, 64, 1 and 2 threads
    python benchmarks/bench_graph.py --quick    # 1e5 nodes, a few seconds per table
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

import manifres.graph as G
from manifres.graph._pyg import message_passing

MessagePassing = message_passing()
from torch_geometric.utils import spmm  # noqa: E402  (after manifres' guarded import)


class _PygStep(MessagePassing):
    """The idiomatic torch-geometric layer: messages ``w * x_j``, sum, ``lerp`` update."""

    def __init__(self, step: float) -> None:
        super().__init__(aggr="add")
        self.step = step

    def forward(self, x, edge_index, weight):
        return torch.lerp(x, self.propagate(edge_index, x=x, weight=weight), self.step)

    def message(self, x_j, weight):
        return weight.unsqueeze(-1) * x_j


def random_graph(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Ring plus ``4 n`` random chords, both directions: ``10 n`` entries, no isolated node."""
    g = torch.Generator().manual_seed(seed)
    a = torch.arange(n)
    r = torch.cat([a, torch.randint(0, n, (4 * n,), generator=g)])
    c = torch.cat([torch.roll(a, -1), torch.randint(0, n, (4 * n,), generator=g)])
    return torch.cat([torch.stack([r, c]), torch.stack([c, r])], dim=1).to(device)


def erdos_renyi(n: int, mean_degree: float = 10.0, seed: int = 0) -> torch.Tensor:
    """G(n, p) with ``p = mean_degree / n`` (pairs drawn uniformly, both directions)."""
    g = torch.Generator().manual_seed(seed)
    m = int(n * mean_degree / 2)
    r = torch.randint(0, n, (m,), generator=g)
    c = torch.randint(0, n, (m,), generator=g)
    keep = r != c
    r, c = r[keep], c[keep]
    return torch.stack([torch.cat([r, c]), torch.cat([c, r])])


def ring(n: int) -> torch.Tensor:
    a = torch.arange(n)
    b = torch.roll(a, -1)
    return torch.stack([torch.cat([a, b]), torch.cat([b, a])])


def grid(k: int) -> torch.Tensor:
    idx = torch.arange(k * k).reshape(k, k)
    pairs = torch.cat(
        [
            torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)]),
            torch.stack([idx[:-1, :].reshape(-1), idx[1:, :].reshape(-1)]),
        ],
        dim=1,
    )
    return torch.cat([pairs, pairs.flip(0)], dim=1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_round_robin(fns: dict, repeats: int, device: torch.device) -> dict:
    """Median seconds per implementation; each round runs all of them in a shuffled order
    (so that no implementation always follows the same one, with its cache footprint)."""
    for f in fns.values():  # warm-up: the manifres layer builds its operator on the 2nd call
        f()
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


NAMES = [
    "manifres",
    "manifres-grad-w",
    "manifres-uncached",
    "pyg-MessagePassing",
    "pyg-spmm",
    "torch-csr",
    "torch-csr-int32",
    "scipy",
]


def bench_step(n: int, widths, repeats: int, device: torch.device, names, step: float = 0.5):
    ei = random_graph(n, device)
    parts = G.laplacian_parts(ei, num_nodes=n, normalization="sym")
    # the idiomatic torch CSR (int64 indices), and the same with int32 indices
    A = torch.sparse_coo_tensor(parts.edge_index, parts.weight, (n, n), check_invariants=False)
    A = A.coalesce().to_sparse_csr()
    A32 = torch.sparse_csr_tensor(
        A.crow_indices().int(), A.col_indices().int(), A.values(), (n, n), check_invariants=False
    )
    pyg = _PygStep(step)
    default = G.LaplacianResidual(step)  # default arguments: sym, cached, validated once
    uncached = G.LaplacianResidual(step, cached=False, validate=False)
    grad_layer = G.LaplacianResidual(step)  # default arguments too
    w = torch.ones(ei.shape[1], device=device, requires_grad=True)
    S = None
    if device.type == "cpu" and "scipy" in names:
        import scipy.sparse as sp

        crow, col = A.crow_indices().numpy(), A.col_indices().numpy()
        S = sp.csr_matrix((A.values().numpy(), col, crow), shape=(n, n))
    rows = []
    for f in widths:
        x = torch.randn(n, f, device=device)
        xn = x.cpu().numpy() if S is not None else None

        def scipy_step(x=xn):
            y = S @ x
            y *= step
            y += (1.0 - step) * x
            return y

        def grad_step(x=x):
            with torch.enable_grad():
                return grad_layer(x, ei, w)

        fns = {
            "manifres": lambda x=x: default(x, ei),
            "manifres-grad-w": grad_step,
            "manifres-uncached": lambda x=x: uncached(x, ei),
            "pyg-MessagePassing": lambda x=x: pyg(x, ei, parts.weight),
            "pyg-spmm": lambda x=x: torch.lerp(x, spmm(A, x), step),
            "torch-csr": lambda x=x: torch.lerp(x, torch.sparse.mm(A, x), step),
            "torch-csr-int32": lambda x=x: torch.lerp(x, torch.sparse.mm(A32, x), step),
        }
        if S is not None:
            fns["scipy"] = scipy_step
        fns = {k: v for k, v in fns.items() if k in names}
        ref = default(x, ei)
        for name in fns:
            if name != "scipy":
                got = fns[name]()
                torch.testing.assert_close(got.detach(), ref, rtol=1e-4, atol=1e-5, msg=name)
        if S is not None:
            np.testing.assert_allclose(scipy_step(), ref.numpy(), rtol=1e-4, atol=1e-5)
        med = _time_round_robin(fns, repeats, device)
        print_step_row(n, f, med, names)
        rows.append((f, med))
        del x, xn
    return rows


def print_step_header(names) -> None:
    head = f"{'threads':>7} {'N':>9} {'F':>3} " + " ".join(f"{k:>20}" for k in names)
    print(head)
    print("-" * len(head), flush=True)


def print_step_row(n: int, f: int, med: dict, names) -> None:
    best = min(med.values())
    cells = " ".join(
        f"{med[k] * 1e3:>10.2f}ms ({med[k] / best:4.2f})" if k in med else f"{'-':>20}"
        for k in names
    )
    print(f"{torch.get_num_threads():>7} {n:>9.0e} {f:>3} {cells}", flush=True)


def bench_lambda_max(n: int, device: torch.device, scipy: bool) -> dict:
    """Print and return ``{normalization: (manifres seconds, scipy seconds or nan)}`` (one call each)."""
    ei = random_graph(n, device, seed=1)
    out = {}
    print(f"\nlambda_max on a {n:.0e}-node graph ({ei.shape[1]} entries), threads {torch.get_num_threads()}")
    for normalization in (None, "sym"):
        w = torch.ones(ei.shape[1], dtype=torch.float64, device=device)
        t = time.perf_counter()
        lam = float(G.lambda_max(ei, w, num_nodes=n, normalization=normalization))
        t_m = time.perf_counter() - t
        line = f"  {str(normalization):>4}: manifres {t_m:7.2f} s  lambda_max {lam:.10g}"
        t_s = float("nan")
        if scipy:
            import scipy.sparse as sp
            import scipy.sparse.linalg as sla

            L = G.laplacian(ei.cpu(), w.cpu(), num_nodes=n, normalization=normalization)
            idx = L.indices().numpy()
            S = sp.csr_matrix((L.values().numpy(), (idx[0], idx[1])), shape=(n, n))
            t = time.perf_counter()
            ref = float(sla.eigsh(S, k=1, which="LA", return_eigenvectors=False, tol=1e-8)[0])
            t_s = time.perf_counter() - t
            line += (
                f"  scipy eigsh {t_s:7.2f} s (ratio {t_m / t_s:4.2f}, eigsh on its prebuilt matrix)"
                f"  {ref:.10g}  rel diff {abs(lam - ref) / ref:.1e}"
            )
        print(line, flush=True)
        out[str(normalization)] = (t_m, t_s)
    return out


def bench_spectra(n: int) -> None:
    k = int(round(n**0.5))
    graphs = {"erdos-renyi": (erdos_renyi(n), n), "ring": (ring(n), n), f"grid {k}x{k}": (grid(k), k * k)}
    print(f"\nspectra of {n:.0e}-node graphs, threads {torch.get_num_threads()} (seconds per call)")
    for name, (ei, nn) in graphs.items():
        for normalization in (None, "sym"):
            step = 0.5 if normalization else 0.05
            out = []
            opts = dict(num_nodes=nn, normalization=normalization)
            calls = (
                ("lambda_max", G.lambda_max, (ei,)),
                ("lambda_2", G.lambda_2, (ei,)),
                ("certificate", G.stability_certificate, (step, ei)),
            )
            for label, fn, fargs in calls:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    t = time.perf_counter()
                    r = fn(*fargs, **opts)
                    dt = time.perf_counter() - t
                if label == "certificate":
                    lo, hi = r.lambda_max_bounds
                    value = f"stable={r.stable} in [{lo:.6g}, {hi:.6g}]"
                else:
                    value = f"{float(r):.8g}" + (" (bound)" if caught else "")
                out.append(f"{label} {dt:5.2f} s {value}")
            print(f"  {name:>13} {str(normalization):>4}: " + "; ".join(out), flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1e5 nodes (seconds)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per row")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default 1 2)")
    p.add_argument("--sizes", type=float, nargs="+", help="node counts of the step table")
    p.add_argument("--widths", type=int, nargs="+", default=[1, 16, 64], help="feature widths")
    p.add_argument("--skip-step", action="store_true", help="skip the diffusion-step table")
    p.add_argument("--skip-spectral", action="store_true", help="skip lambda_max and certificates")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    sizes = [int(n) for n in args.sizes] if args.sizes else [100_000 if args.quick else 1_000_000]
    threads = args.threads or [1, 2]
    names = NAMES if device.type == "cpu" else NAMES[:-1]
    print(f"torch {torch.__version__}, device {device}, float32, step 0.5, 'sym', average degree 10")
    for t in threads:
        torch.set_num_threads(t)
        if not args.skip_step:
            print()
            print_step_header(names)
            for n in sizes:
                repeats = args.repeats or (11 if n <= 100_000 else 7)
                bench_step(n, args.widths, repeats, device, names)
            print("(median milliseconds; in brackets the ratio to the fastest in the row; forward only)")
        if not args.skip_spectral:
            n = sizes[-1]
            bench_lambda_max(n, device, scipy=device.type == "cpu")
            if device.type == "cpu":
                bench_spectra(n)


if __name__ == "__main__":
    main()
