"""Side-by-side timings of manifold operations: manifres vs geoopt, geomstats, pymanopt, roma, pypose.

One process, CPU float32 by default, each thread count in turn (``torch.set_num_threads`` and,
when threadpoolctl is installed, the NumPy/BLAS pools used by pymanopt, geomstats and SciPy).
Every implementation of a row runs round-robin with the others (``_timing.interleaved``), so
load hits all alike; the tables give medians in milliseconds.

Columns: ``manifres`` (eager), ``manifres compiled`` (``torch.compile(fn, dynamic=False)`` of the
manifres call; the warm-up compile is excluded from the timings and reported in ``compile s``),
``manifres switch`` (when ``manifres.use_compiled_kernels`` exists), every peer eager and the
peers compiled where ``torch.compile`` accepts them ('-' where it fails), and ``torch.add``:
``torch.add(x, v)`` on two tensors of the row's point size (the cost of reading two inputs and
writing one fresh output). Ratios: manifres / fastest eager peer (below 1: manifres is faster)
and each manifres column / torch.add.

Targets (column ``target met``): manifres eager <= 1.0x the fastest eager peer on every row
with a peer; on S^63 manifres compiled >= 3x faster than the fastest eager peer on the residual
step fwd+bwd, and within 1.5x of torch.add on proj, exp and projective at B = 1e6.

Rows: S^2 and S^63 proj, exp, log, projective, residual step ``x <- exp_x(h P_x(W x))``
forward+backward; SO(3) exp, log, compose, exp/Cayley/QR/polar retractions; SO(8) exp (B/10
points); the graph step (default ``LaplacianResidual``) with F = 1, 16, 64 and lambda_max on a
graph of the largest batch's node count (from ``bench_graph.py``); RKMK4 vs Euler (one step of
``manifres.flows.integrate``, linear field) on S^399 (B/1000 points, ``--rkmk-batch``).

Usage::

    python benchmarks/bench_manifolds.py --quick     # B = 1e4, 1 thread, compiled S^63 rows only
    python benchmarks/bench_manifolds.py             # B = 1e5 and 1e6, 1 and 2 threads (long)
    python benchmarks/bench_manifolds.py --rows S^63 "SO(3)" --threads 2 --out table.md --json t.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved  # noqa: E402

import manifres  # noqa: E402

warnings.filterwarnings("ignore")

PEERS = (
    "geoopt",
    "geomstats",
    "pymanopt",
    "roma",
    "pypose",
    "pyg-MessagePassing",
    "pyg-spmm",
    "torch-csr",
    "torch-csr-int32",
    "scipy",
)
COMPILABLE_PEERS = ("geoopt", "roma", "pypose")
ADD = "torch.add"
SPHERE_OPS = ("proj", "exp", "log", "projective", "step fwd+bwd")
SO3_OPS = ("exp", "log", "compose", "retr exp", "retr cayley", "retr qr", "retr polar")


@dataclass
class Call:
    """``fn(*args)``; with ``backward`` the float inputs get gradients and ``out.sum()`` is backpropagated."""

    fn: object
    args: tuple
    backward: bool = False

    def runner(self, fn=None):
        fn = fn or self.fn
        if not self.backward:
            args = self.args
            return lambda: fn(*args)

        def run():
            xs = [a.detach().requires_grad_(True) for a in self.args]
            fn(*xs).sum().backward()

        return run


@dataclass
class Row:
    group: str
    label: str
    batch: int
    threads: int
    times: dict = field(default_factory=dict)  # name -> seconds (median)
    compile_s: dict = field(default_factory=dict)  # name -> seconds of the first (compiling) call
    note: str = ""
    targets: list = field(default_factory=list)  # (description, met: bool | None)


def peers():
    found = {}
    try:
        import geoopt

        found["geoopt"] = geoopt
    except ImportError:
        pass
    try:
        from manifres.interop.geomstats import import_geomstats

        import_geomstats()
        torch.set_default_dtype(torch.float32)  # geomstats sets it; the rows pass dtypes anyway
        import geomstats.geometry.hypersphere as gh
        import geomstats.geometry.special_orthogonal as gso

        found["geomstats"] = (gh, gso)
    except ImportError:
        pass
    for name in ("pymanopt", "roma", "pypose"):
        try:
            found[name] = __import__(name)
        except ImportError:
            pass
    return found


def _switch_runner(switch, run):
    """Run ``run`` with ``manifres.use_compiled_kernels`` on (a context manager or a setter)."""

    def wrapped():
        res = switch(True)
        if hasattr(res, "__enter__"):
            with res:
                return run()
        try:
            return run()
        finally:
            switch(False)

    return wrapped


class Timer:
    def __init__(self, args):
        self.args = args
        self.switch = getattr(manifres, "use_compiled_kernels", None)
        if not callable(self.switch):
            self.switch = None

    def want_compile(self, name: str, label: str) -> bool:
        mode = self.args.compile
        if mode == "none":
            return False
        if mode == "targets":  # the rows that carry a compiled target
            return name == "manifres" and label.startswith("S^63") and label.split()[1] in (
                "proj",
                "exp",
                "projective",
                "step",
            )
        return name == "manifres" or name in COMPILABLE_PEERS

    def row(self, group, label, batch, calls: dict, add_args, note="") -> Row:
        """Time ``calls`` (name -> Call), their compiled variants and torch.add, interleaved."""
        row = Row(group, label, batch, torch.get_num_threads(), note=note)
        fns = {name: c.runner() for name, c in calls.items()}
        for name, c in calls.items():
            if not self.want_compile(name, label):
                continue
            cname = f"{name} compiled"
            try:
                cf = torch.compile(c.fn, dynamic=False)
                run = c.runner(cf)
                t0 = time.perf_counter()
                run()
                row.compile_s[cname] = time.perf_counter() - t0
                fns[cname] = run
            except Exception as err:  # noqa: BLE001
                print(f"    {cname}: compile failed ({type(err).__name__}: {str(err)[:80]})")
                row.times[cname] = float("nan")
        if self.switch is not None and "manifres" in calls:
            fns["manifres switch"] = _switch_runner(self.switch, calls["manifres"].runner())
        if add_args is not None:
            a, b = add_args
            fns[ADD] = lambda: torch.add(a, b)
        row.times.update(interleaved(fns, self.args.repeat, self.args.device, self.args.budget))
        return row


def _add_args(x):
    return x, torch.rand_like(x)


def sphere_rows(T, P, n, B, dtype, device, h=0.1, keep=lambda label: True):
    S = manifres.Sphere(n, cut_locus="nan")
    g = torch.Generator().manual_seed(0)
    x = S.random(B, dtype=dtype, generator=g).to(device)
    u = torch.randn(B, n + 1, dtype=dtype, generator=g).to(device)
    v = 0.5 * S.proj(x, u) / (n + 1) ** 0.5
    y = S.exp(x, v)
    W = (torch.randn(n + 1, n + 1, dtype=dtype, generator=g) / (n + 1) ** 0.5).to(device)
    impl = {k: {} for k in SPHERE_OPS}

    def step(expf, projf):
        def fwd(xx, Wr):
            return expf(xx, h * projf(xx, xx @ Wr))

        return Call(fwd, (x, W), backward=True)

    def m_proj(a, b):
        return S.proj(a, b)

    def m_exp(a, b):
        return S.exp(a, b)

    def m_log(a, b):
        return S.log(a, b)

    def m_projective(a, b):
        return S.retract(a, b, "projective")

    impl["proj"]["manifres"] = Call(m_proj, (x, u))
    impl["exp"]["manifres"] = Call(m_exp, (x, v))
    impl["log"]["manifres"] = Call(m_log, (x, y))
    impl["projective"]["manifres"] = Call(m_projective, (x, v))
    impl["step fwd+bwd"]["manifres"] = step(S.exp, S.proj)
    if "geoopt" in P:
        G = P["geoopt"].Sphere()
        impl["proj"]["geoopt"] = Call(G.proju, (x, u))
        impl["exp"]["geoopt"] = Call(G.expmap, (x, v))
        impl["log"]["geoopt"] = Call(G.logmap, (x, y))
        impl["projective"]["geoopt"] = Call(G.retr, (x, v))
        impl["step fwd+bwd"]["geoopt"] = step(G.expmap, G.proju)
    if "geomstats" in P and device == "cpu":
        H = P["geomstats"][0].Hypersphere(dim=n)
        impl["proj"]["geomstats"] = Call(lambda a, b: H.to_tangent(b, a), (x, u))
        impl["exp"]["geomstats"] = Call(lambda a, b: H.metric.exp(b, a), (x, v))
        impl["log"]["geomstats"] = Call(lambda a, b: H.metric.log(b, a), (x, y))
        impl["projective"]["geomstats"] = Call(lambda a, b: H.projection(a + b), (x, v))
        impl["step fwd+bwd"]["geomstats"] = step(
            lambda a, b: H.metric.exp(b, a), lambda a, b: H.to_tangent(b, a)
        )
    if "pymanopt" in P and device == "cpu" and B <= 10**5:  # numpy, no autograd: no step row
        O = P["pymanopt"].manifolds.Oblique(n + 1, B)  # columns on S^n: pymanopt's batched sphere
        xn, un, vn, yn = (t.T.contiguous().cpu().numpy() for t in (x, u, v, y))
        impl["proj"]["pymanopt"] = Call(O.projection, (xn, un))
        impl["exp"]["pymanopt"] = Call(O.exp, (xn, vn))
        impl["log"]["pymanopt"] = Call(O.log, (xn, yn))
        impl["projective"]["pymanopt"] = Call(O.retraction, (xn, vn))
    add = _add_args(x)
    rows = []
    for op, calls in impl.items():
        label = f"S^{n} {op}"
        if keep(label):
            rows.append(T.row("sphere", label, B, calls, add))
    return rows


def so_rows(T, P, B, dtype, device, keep=lambda label: True):
    SO, so3 = manifres.SpecialOrthogonal, manifres.so3
    M = SO(3)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(B, 3, dtype=dtype, generator=g).to(device)
    R = so3.exp(w)
    R2 = M.random(B, dtype=dtype, generator=g).to(device)
    V = M.proj(R, 0.3 * torch.randn(B, 3, 3, dtype=dtype, generator=g).to(device))
    impl = {k: {} for k in SO3_OPS}
    impl["exp"]["manifres"] = Call(lambda a: so3.exp(a), (w,))
    impl["log"]["manifres"] = Call(lambda a: so3.log(a), (R,))
    impl["compose"]["manifres"] = Call(lambda a, b: a @ b, (R, R2))
    for m in ("exp", "cayley", "qr", "polar"):
        impl[f"retr {m}"]["manifres"] = Call(lambda a, b, m=m: M.retract(a, b, m), (R, V))
    if "roma" in P:
        roma = P["roma"]
        impl["exp"]["roma"] = Call(roma.rotvec_to_rotmat, (w,))
        impl["log"]["roma"] = Call(roma.rotmat_to_rotvec, (R,))
        impl["compose"]["roma"] = Call(lambda a, b: roma.rotmat_composition((a, b)), (R, R2))
        impl["retr polar"]["roma"] = Call(lambda a, b: roma.special_procrustes(a + b), (R, V))
    if "pypose" in P:
        pp = P["pypose"]
        q = pp.so3(w).Exp()
        q2 = pp.mat2SO3(R2, check=False)
        impl["exp"]["pypose"] = Call(lambda a: pp.so3(a).Exp().matrix(), (w,))
        impl["log"]["pypose"] = Call(lambda a: pp.mat2SO3(a, check=False).Log(), (R,))
        impl["compose"]["pypose"] = Call(lambda a, b: a * b, (q, q2))
    # geomstats' SO(3) log calls scipy's logm once per matrix, and pymanopt loops in numpy:
    # minutes per call past 1e4 rotations, so they are timed on the small batches only ('-' above)
    if "geomstats" in P and device == "cpu" and B <= 10**4:
        G = P["geomstats"][1].SpecialOrthogonal(3, point_type="matrix")
        impl["exp"]["geomstats"] = Call(lambda a: G.exp(so3.hat(a)), (w,))
        if B <= 10**3:  # scipy logm per matrix: ~30 s at 1e4
            impl["log"]["geomstats"] = Call(G.log, (R,))
        impl["compose"]["geomstats"] = Call(G.compose, (R, R2))
        impl["retr exp"]["geomstats"] = Call(lambda a, b: G.metric.exp(b, a), (R, V))
    if "pymanopt" in P and device == "cpu" and B <= 10**4:
        Mp = P["pymanopt"].manifolds.SpecialOrthogonalGroup(3, k=B)
        Rn = R.cpu().numpy()
        Om = (R.transpose(-1, -2) @ V).cpu().numpy()  # pymanopt: tangent vectors in the Lie algebra
        Wn = so3.hat(w).cpu().numpy()
        eye = np.broadcast_to(np.eye(3, dtype=Rn.dtype), Rn.shape)
        impl["exp"]["pymanopt"] = Call(Mp.exp, (eye, Wn))
        if B <= 10**3:  # a python loop of logm: ~30 s at 1e4
            impl["log"]["pymanopt"] = Call(Mp.log, (eye, Rn))
        impl["retr exp"]["pymanopt"] = Call(Mp.exp, (Rn, Om))
        for m in ("qr", "polar"):
            Mr = P["pymanopt"].manifolds.SpecialOrthogonalGroup(3, k=B, retraction=m)
            impl[f"retr {m}"]["pymanopt"] = Call(Mr.retraction, (Rn, Om))
    add = _add_args(R)
    rows = []
    for op, calls in impl.items():
        label = f"SO(3) {op}"
        if keep(label):
            rows.append(T.row("rotations", label, B, calls, add))
    if not keep("SO(8) exp"):
        return rows
    M8 = SO(8)
    B8 = max(B // 10, 1)
    R8 = M8.random(B8, dtype=dtype, generator=g).to(device)
    V8 = 0.3 * M8.random_tangent(R8, generator=g)
    calls = {
        "manifres": Call(lambda a, b: M8.exp(a, b), (R8, V8)),
        "torch matrix_exp": Call(lambda a, b: a @ torch.linalg.matrix_exp(a.transpose(-1, -2) @ b), (R8, V8)),
    }
    if "geomstats" in P and device == "cpu" and B8 <= 10**4:
        G8 = P["geomstats"][1].SpecialOrthogonal(8, point_type="matrix")
        calls["geomstats"] = Call(lambda a, b: G8.metric.exp(b, a), (R8, V8))
    if "pymanopt" in P and device == "cpu" and B8 <= 10**4:
        Mp8 = P["pymanopt"].manifolds.SpecialOrthogonalGroup(8, k=B8)
        R8n, O8n = R8.cpu().numpy(), (R8.transpose(-1, -2) @ V8).cpu().numpy()
        calls["pymanopt"] = Call(Mp8.exp, (R8n, O8n))
    rows.append(T.row("rotations", "SO(8) exp", B8, calls, _add_args(R8)))
    return rows


def rkmk_rows(T, B, dtype, device, keep=lambda label: True):
    from manifres.flows import integrate

    label = "S^399 rkmk4 vs euler"
    if not keep(label):
        return []
    n = 399
    S = manifres.Sphere(n)
    Bn = T.args.rkmk_batch or max(B // 1000, 1)
    g = torch.Generator().manual_seed(2)
    x0 = S.random(Bn, dtype=dtype, generator=g).to(device)
    A = (torch.randn(n + 1, n + 1, dtype=dtype, generator=g) / (n + 1) ** 0.5).to(device)

    def linear(x):
        return x @ A

    calls = {
        "manifres": Call(lambda x: integrate(S, linear, x, 0.1, steps=1, method="rkmk4"), (x0,)),
        "manifres euler": Call(lambda x: integrate(S, linear, x, 0.1, steps=1, method="euler"), (x0,)),
    }
    row = T.row("flows", label, Bn, calls, _add_args(x0))
    r4, e = row.times.get("manifres"), row.times.get("manifres euler")
    if r4 and e and r4 == r4 and e == e:
        row.note = f"rkmk4 / euler {r4 / e:.2f}"
    return [row]


def graph_rows(T, n, keep=lambda label: True):
    try:
        import bench_graph as BG
    except ImportError as err:  # torch-geometric (the bench extra) missing
        print(f"  graph rows skipped ({err})")
        return []

    rows = []
    device = torch.device(T.args.device)
    widths = [f for f in (1, 16, 64) if keep(f"graph step F={f}")]
    if widths:
        names = BG.NAMES if device.type == "cpu" else BG.NAMES[:-1]
        print(f"  graph step N={n:.0e} (bench_graph.bench_step)", flush=True)
        BG.print_step_header(names)
        for f, med in BG.bench_step(n, widths, T.args.repeat, device, names):
            x = torch.randn(n, f, device=device)
            add = interleaved({ADD: lambda x=x: torch.add(x, x)}, T.args.repeat, T.args.device)
            row = Row("graph", f"graph step F={f}", n, torch.get_num_threads())
            row.times = {**med, **add}
            row.note = "torch.add timed right after the step round-robin"
            rows.append(row)
    if keep("graph lambda_max") and device.type == "cpu":
        res = BG.bench_lambda_max(n, device, scipy=True)
        for norm, (t_m, t_s) in res.items():
            row = Row("graph", f"graph lambda_max {norm}", n, torch.get_num_threads())
            row.times = {"manifres": t_m, "scipy": t_s}
            row.note = "one call each (validation, operator, Lanczos vs eigsh on its prebuilt matrix)"
            rows.append(row)
    return rows


def assess(row: Row) -> None:
    """Fill ``row.targets`` with (description, met)."""
    t = row.times
    ok = lambda v: v is not None and v == v  # noqa: E731
    peers = [t[p] for p in PEERS if ok(t.get(p))]
    best = min(peers) if peers else None
    mine = t.get("manifres")
    comp = t.get("manifres compiled")
    if best and ok(mine):
        row.targets.append(("eager <= 1.0x peer", mine <= best))
    op = row.label.split()
    if row.label == "S^63 step fwd+bwd" and best:
        row.targets.append(("compiled >= 3x faster than peer", ok(comp) and best / comp >= 3.0 or False))
    if op[0] == "S^63" and op[1] in ("proj", "exp", "projective") and row.batch == 10**6:
        a = t.get(ADD)
        row.targets.append(("compiled <= 1.5x torch.add", bool(ok(comp) and ok(a) and comp / a <= 1.5)))


def _ms(v):
    return "-" if v is None or v != v else f"{1e3 * v:.3g}"


def _ratio(a, b):
    return "-" if not a or not b or a != a or b != b else f"{a / b:.2f}"


def markdown(rows: list[Row]) -> str:
    out = []
    for group in dict.fromkeys(r.group for r in rows):
        grp = [r for r in rows if r.group == group]
        seen = list(dict.fromkeys(k for r in grp for k in r.times))
        mcols = [k for k in seen if k.startswith("manifres")]
        pcols = [p for p in PEERS if p in seen] + [f"{p} compiled" for p in PEERS if f"{p} compiled" in seen]
        other = [k for k in seen if k not in mcols and k not in pcols and k != ADD]
        cols = mcols + pcols + other + ([ADD] if ADD in seen else [])
        head = ["row", "B", "threads"] + [f"{c} (ms)" for c in cols]
        head += ["compile s", "manifres / fastest peer", "manifres / add", "compiled / add"]
        head += ["target met", "note"]
        out += [f"\n## {group}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in grp:
            t = r.times
            peers = [t[p] for p in PEERS if t.get(p) is not None and t[p] == t[p]]
            best = min(peers) if peers else None
            cells = [r.label, f"{r.batch:.0e}", str(r.threads)] + [_ms(t.get(c)) for c in cols]
            cells.append("; ".join(f"{k.split()[0]} {v:.1f}" for k, v in r.compile_s.items()) or "-")
            cells.append(_ratio(t.get("manifres"), best))
            cells.append(_ratio(t.get("manifres"), t.get(ADD)))
            cells.append(_ratio(t.get("manifres compiled"), t.get(ADD)))
            if not r.targets:
                cells.append("-")
            else:
                failed = [d for d, met in r.targets if not met]
                cells.append("yes" if not failed else "no: " + "; ".join(failed))
            cells.append(r.note)
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="B = 1e4, 1 thread, 3 repeats, compiled S^63 rows only"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds per row (default 7, quick 3)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of timed rounds per row (default 20)")
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default 1 2)")
    ap.add_argument("--batches", type=float, nargs="+", default=None, help="batch sizes (default 1e5 1e6)")
    ap.add_argument("--rows", nargs="+", default=None, help="keep rows whose label contains one of these")
    ap.add_argument(
        "--compile",
        choices=["all", "targets", "none"],
        default=None,
        help="compiled columns: manifres and peers (default), only the S^63 target rows (quick), none",
    )
    ap.add_argument(
        "--rkmk-batch", type=int, default=None, help="points of the S^399 row (default B/1000, quick 10)"
    )
    ap.add_argument("--out", default=None, help="write the markdown tables to this file")
    ap.add_argument("--json", default=None, help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 7)
    args.budget = args.budget or (3.0 if args.quick else 20.0)
    args.compile = args.compile or ("targets" if args.quick else "all")
    if args.quick and args.rkmk_batch is None:
        args.rkmk_batch = 10
    threads = args.threads or ([1] if args.quick else [1, 2])
    batches = [int(b) for b in args.batches] if args.batches else ([10**4] if args.quick else [10**5, 10**6])
    tokens = [s.lower() for s in args.rows] if args.rows else None

    def keep(label):
        return tokens is None or any(tok in label.lower() for tok in tokens)

    dyn_limits = {"recompile_limit": 1024, "cache_size_limit": 1024, "accumulated_recompile_limit": 4096}
    for name, value in dyn_limits.items():  # one compiled graph per row, shape and thread count
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, value)
    dtype = getattr(torch, args.dtype)
    P = peers()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    T = Timer(args)
    header = [
        f"torch {torch.__version__}, device {args.device}, {args.dtype}",
        f"threads {threads}, batches {batches}",
        "peers: " + (", ".join(P) or "none"),
        "numpy/BLAS threads: " + ("threadpoolctl" if threadpool_limits else "not limited (no threadpoolctl)"),
        "manifres switch: " + ("manifres.use_compiled_kernels" if T.switch else "absent"),
    ]
    print("\n".join(header), flush=True)
    rows: list[Row] = []
    t_start = time.perf_counter()
    for nt in threads:
        torch.set_num_threads(nt)
        limits = threadpool_limits(nt) if threadpool_limits else contextlib.nullcontext()
        with limits:
            for B in batches:
                for n in (2, 63):
                    if any(keep(f"S^{n} {op}") for op in SPHERE_OPS):
                        print(f"  threads {nt} sphere S^{n} B={B:.0e} ...", flush=True)
                        rows += sphere_rows(T, P, n, B, dtype, args.device, keep=keep)
                if any(keep(f"SO(3) {op}") for op in SO3_OPS) or keep("SO(8) exp"):
                    print(f"  threads {nt} SO(3)/SO(8) B={B:.0e} ...", flush=True)
                    rows += so_rows(T, P, B, dtype, args.device, keep=keep)
                if keep("S^399 rkmk4 vs euler"):
                    print(f"  threads {nt} S^399 rkmk4 vs euler ...", flush=True)
                    rows += rkmk_rows(T, B, dtype, args.device, keep=keep)
            graph_labels = ("graph step F=1", "graph step F=16", "graph step F=64", "graph lambda_max")
            if any(keep(s) for s in graph_labels):
                rows += graph_rows(T, max(batches), keep=keep)
    for r in rows:
        assess(r)
    text = "\n".join(header) + "\n" + markdown(rows) + "\n"
    text += (
        "\nMedians in ms (lambda_max: one call). Ratios below 1: manifres is faster. 'compile s': the"
        " first (compiling) call of each compiled column, excluded from its median."
        f" Total {time.perf_counter() - t_start:.0f} s.\n"
    )
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                [
                    {
                        **{k: v for k, v in r.__dict__.items() if k != "times"},
                        "times": {k: (None if math.isnan(v) else v) for k, v in r.times.items()},
                    }
                    for r in rows
                ],
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
