"""Timing helpers shared by the benchmark scripts: medians of interleaved runs, copy bandwidth."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], object]], repeat: int, device: str, budget_s: float = 20.0
) -> dict[str, float]:
    """Median wall time (seconds) of each callable, run round-robin so that load hits all alike.

    A callable that raises is reported as NaN. Stops early when ``budget_s`` is spent.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    alive = dict(fns)
    for name, fn in list(alive.items()):  # warm-up (and drop what fails)
        try:
            fn()
            sync(device)
        except Exception as err:  # noqa: BLE001
            print(f"    {name}: failed ({type(err).__name__}: {str(err)[:80]})")
            alive.pop(name)
    start = time.perf_counter()
    for _ in range(repeat):
        for name, fn in alive.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return {k: (statistics.median(v) if v else float("nan")) for k, v in times.items()}


def copy_bandwidth(device: str, mbytes: int = 256, repeat: int = 15) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write counted) on preallocated buffers."""
    n = mbytes * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    t = interleaved({"copy": lambda: dst.copy_(src)}, repeat, device)["copy"]
    return 2 * src.numel() * 4 / t


def table(rows: list[dict], peers: list[str], bw: float) -> str:
    """Format rows ``{"row": str, "bytes": int, name: seconds, ...}`` as a markdown table."""
    head = ["row"] + peers + ["manifres / fastest peer", "manifres % of copy BW"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["row"]]
        for p in peers:
            t = r.get(p)
            cells.append("n/a" if t is None or t != t else f"{1e3 * t:.3g} ms")
        mine = r.get("manifres")
        others = [r[p] for p in peers if p != "manifres" and r.get(p) is not None and r[p] == r[p]]
        cells.append(f"{mine / min(others):.2f}" if others and mine else "n/a")
        cells.append(f"{100 * r['bytes'] / mine / bw:.0f}%" if mine else "n/a")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
