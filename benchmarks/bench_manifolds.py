"""Side-by-side timings of manifold operations: manifres vs geoopt, geomstats, pymanopt, roma, pypose.

Run ``python benchmarks/bench_manifolds.py`` (full: batches 1e3, 1e5, 1e6; several minutes on a
2-core CPU) or ``--quick`` (batches 1e3, 1e4). Prints markdown tables of median times, the ratio
manifres / fastest peer (below 1: manifres is faster), and the fraction of the machine's copy
bandwidth that manifres reaches (bytes of the inputs read and outputs written, over the time).
Every implementation runs interleaved with the others in one process, so load hits all alike.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import copy_bandwidth, interleaved, table  # noqa: E402

import manifres  # noqa: E402

warnings.filterwarnings("ignore")


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
        import geomstats.geometry.hypersphere as gh
        import geomstats.geometry.special_orthogonal as gso

        found["geomstats"] = (gh, gso)
    except ImportError:
        pass
    try:
        import pymanopt

        found["pymanopt"] = pymanopt
    except ImportError:
        pass
    try:
        import roma

        found["roma"] = roma
    except ImportError:
        pass
    try:
        import pypose

        found["pypose"] = pypose
    except ImportError:
        pass
    return found


def sphere_rows(P, n, B, dtype, device, repeat, h=0.1):
    S = manifres.Sphere(n, cut_locus="nan")
    g = torch.Generator().manual_seed(0)
    x = S.random(B, dtype=dtype, generator=g).to(device)
    u = torch.randn(B, n + 1, dtype=dtype, generator=g).to(device)
    v = 0.5 * S.proj(x, u) / (n + 1) ** 0.5
    y = S.exp(x, v)
    W = (torch.randn(n + 1, n + 1, dtype=dtype, generator=g) / (n + 1) ** 0.5).to(device)
    nbytes = x.numel() * x.element_size()
    impl = {k: {} for k in ("proj", "exp", "log", "projective", "step fwd+bwd")}
    impl["proj"]["manifres"] = lambda: S.proj(x, u)
    impl["exp"]["manifres"] = lambda: S.exp(x, v)
    impl["log"]["manifres"] = lambda: S.log(x, y)
    impl["projective"]["manifres"] = lambda: S.retract(x, v, "projective")

    def step(expf, projf):
        def run():
            xx = x.detach().requires_grad_(True)
            Wr = W.detach().requires_grad_(True)
            out = expf(xx, h * projf(xx, xx @ Wr))
            out.sum().backward()

        return run

    impl["step fwd+bwd"]["manifres"] = step(S.exp, S.proj)
    if "geoopt" in P:
        G = P["geoopt"].Sphere()
        impl["proj"]["geoopt"] = lambda: G.proju(x, u)
        impl["exp"]["geoopt"] = lambda: G.expmap(x, v)
        impl["log"]["geoopt"] = lambda: G.logmap(x, y)
        impl["projective"]["geoopt"] = lambda: G.retr(x, v)
        impl["step fwd+bwd"]["geoopt"] = step(G.expmap, G.proju)
    if "geomstats" in P and device == "cpu":
        H = P["geomstats"][0].Hypersphere(dim=n)
        impl["proj"]["geomstats"] = lambda: H.to_tangent(u, x)
        impl["exp"]["geomstats"] = lambda: H.metric.exp(v, x)
        impl["log"]["geomstats"] = lambda: H.metric.log(y, x)
        impl["projective"]["geomstats"] = lambda: H.projection(x + v)
        impl["step fwd+bwd"]["geomstats"] = step(
            lambda a, b: H.metric.exp(b, a), lambda a, b: H.to_tangent(b, a)
        )
    if "pymanopt" in P and device == "cpu" and B <= 10**5:
        O = P["pymanopt"].manifolds.Oblique(n + 1, B)  # columns on S^n: pymanopt's batched sphere
        xn, un, vn, yn = (t.T.contiguous().cpu().numpy() for t in (x, u, v, y))
        impl["proj"]["pymanopt"] = lambda: O.projection(xn, un)
        impl["exp"]["pymanopt"] = lambda: O.exp(xn, vn)
        impl["log"]["pymanopt"] = lambda: O.log(xn, yn)
        impl["projective"]["pymanopt"] = lambda: O.retraction(xn, vn)
    rows = []
    io = {"proj": 3, "exp": 3, "log": 3, "projective": 3, "step fwd+bwd": 5}
    for op, fns in impl.items():
        r = interleaved(fns, repeat, device)
        r["row"] = f"S^{n} {op} B={B:.0e}"
        r["bytes"] = io[op] * nbytes
        rows.append(r)
    return rows


def so_rows(P, B, dtype, device, repeat):
    SO = getattr(manifres, "SpecialOrthogonal", None)
    so3 = getattr(manifres, "so3", None)
    if SO is None or so3 is None:
        print("  (manifres.SpecialOrthogonal not available: SO rows skipped)")
        return []
    M = SO(3)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(B, 3, dtype=dtype, generator=g).to(device)
    R = so3.exp(w)
    R2 = M.random(B, dtype=dtype, generator=g).to(device)
    V = M.proj(R, 0.3 * torch.randn(B, 3, 3, dtype=dtype, generator=g).to(device))
    impl = {
        k: {}
        for k in (
            "exp (rotvec->R)",
            "log (R->rotvec)",
            "compose",
            "retr exp",
            "retr cayley",
            "retr qr",
            "retr polar",
        )
    }
    impl["exp (rotvec->R)"]["manifres"] = lambda: so3.exp(w)
    impl["log (R->rotvec)"]["manifres"] = lambda: so3.log(R)
    impl["compose"]["manifres"] = lambda: R @ R2
    for m in ("exp", "cayley", "qr", "polar"):
        impl[f"retr {m}"]["manifres"] = functools.partial(M.retract, R, V, m)
    if "roma" in P:
        roma = P["roma"]
        impl["exp (rotvec->R)"]["roma"] = lambda: roma.rotvec_to_rotmat(w)
        impl["log (R->rotvec)"]["roma"] = lambda: roma.rotmat_to_rotvec(R)
        impl["compose"]["roma"] = lambda: roma.rotmat_composition((R, R2))
        impl["retr polar"]["roma"] = lambda: roma.special_procrustes(R + V)
    if "pypose" in P:
        pp = P["pypose"]
        impl["exp (rotvec->R)"]["pypose"] = lambda: pp.so3(w).Exp().matrix()
        q = pp.so3(w).Exp()
        q2 = pp.SO3(pp.mat2SO3(R2).tensor())
        impl["log (R->rotvec)"]["pypose"] = lambda: pp.mat2SO3(R, check=False).Log()
        impl["compose"]["pypose"] = lambda: q * q2
    # geomstats' SO(3) log calls scipy's logm once per matrix, and pymanopt loops in numpy:
    # minutes per call past 1e4 rotations, so they are timed on the small batches only
    if "geomstats" in P and device == "cpu" and B <= 10**4:
        G = P["geomstats"][1].SpecialOrthogonal(3, point_type="matrix")
        V0 = R.transpose(-1, -2) @ V
        impl["exp (rotvec->R)"]["geomstats"] = lambda: G.exp(so3.hat(w))
        impl["log (R->rotvec)"]["geomstats"] = lambda: G.log(R)
        impl["compose"]["geomstats"] = lambda: G.compose(R, R2)
        impl["retr exp"]["geomstats"] = lambda: G.metric.exp(V, R)
        del V0
    if "pymanopt" in P and device == "cpu" and B <= 10**4:
        Mp = P["pymanopt"].manifolds.SpecialOrthogonalGroup(3, k=B)
        Rn = R.cpu().numpy()
        Om = (R.transpose(-1, -2) @ V).cpu().numpy()  # pymanopt: tangent vectors in the Lie algebra
        Wn = so3.hat(w).cpu().numpy()
        impl["exp (rotvec->R)"]["pymanopt"] = lambda: Mp.exp(np.broadcast_to(np.eye(3), Wn.shape), Wn)
        impl["log (R->rotvec)"]["pymanopt"] = lambda: Mp.log(np.broadcast_to(np.eye(3), Rn.shape), Rn)
        impl["retr exp"]["pymanopt"] = lambda: Mp.exp(Rn, Om)
        for m in ("qr", "polar"):
            Mr = P["pymanopt"].manifolds.SpecialOrthogonalGroup(3, k=B, retraction=m)
            impl[f"retr {m}"]["pymanopt"] = functools.partial(Mr.retraction, Rn, Om)
    rows = []
    nbytes = R.numel() * R.element_size()
    for op, fns in impl.items():
        r = interleaved(fns, repeat, device)
        r["row"] = f"SO(3) {op} B={B:.0e}"
        r["bytes"] = 2 * nbytes
        rows.append(r)
    # SO(8) exp
    M8 = SO(8)
    R8 = M8.random(B // 10 or 1, dtype=dtype, generator=g).to(device)
    V8 = 0.3 * M8.random_tangent(R8, generator=g)
    fns = {
        "manifres": lambda: M8.exp(R8, V8),
        "torch matrix_exp": lambda: R8 @ torch.linalg.matrix_exp(R8.transpose(-1, -2) @ V8),
    }
    if "geomstats" in P and device == "cpu" and B <= 10**4:
        G8 = P["geomstats"][1].SpecialOrthogonal(8, point_type="matrix")
        fns["geomstats"] = lambda: G8.metric.exp(V8, R8)
    if "pymanopt" in P and device == "cpu" and B <= 10**4:
        Mp8 = P["pymanopt"].manifolds.SpecialOrthogonalGroup(8, k=R8.shape[0])
        R8n, O8n = R8.cpu().numpy(), (R8.transpose(-1, -2) @ V8).cpu().numpy()
        fns["pymanopt"] = lambda: Mp8.exp(R8n, O8n)
    r = interleaved(fns, repeat, device)
    r["row"] = f"SO(8) exp B={R8.shape[0]:.0e}"
    r["bytes"] = 3 * R8.numel() * R8.element_size()
    rows.append(r)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small batches (1e3, 1e4)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", choices=["sphere", "so"], default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    batches = [10**3, 10**4] if args.quick else [10**3, 10**5, 10**6]
    P = peers()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, {args.dtype}")
    print("peers:", ", ".join(P) or "none")
    bw = copy_bandwidth(args.device)
    print(f"copy bandwidth: {bw / 1e9:.1f} GB/s\n")
    names = ["manifres", "geoopt", "geomstats", "pymanopt"]
    if args.only in (None, "sphere"):
        rows = []
        for n in (2, 63):
            for B in batches:
                print(f"  sphere S^{n} B={B:.0e} ...", flush=True)
                rows += sphere_rows(P, n, B, dtype, args.device, args.repeat)
        print("\n## Sphere\n")
        print(table(rows, names, bw))
    if args.only in (None, "so"):
        rows = []
        for B in batches:
            print(f"  SO(3)/SO(8) B={B:.0e} ...", flush=True)
            rows += so_rows(P, B, dtype, args.device, args.repeat)
        print("\n## Rotations\n")
        print(table(rows, ["manifres", "roma", "pypose", "geomstats", "pymanopt", "torch matrix_exp"], bw))


if __name__ == "__main__":
    main()
