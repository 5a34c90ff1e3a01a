"""The ``manifres`` command: run stability studies from a shell.

::

    manifres study depth              # depth profile of a residual tanh stack
    manifres study weyl               # the Weyl bound on random residual matrices
    manifres study diffusion --graph karate
    manifres study plain-vs-residual  # first-layer gradient norm at depths 10, 100, 1000
    manifres study scale              # sweep of the residual scale a
    manifres tour --quick             # run every gallery example (manifres.tour)

Each study writes ``<study>.json`` (schema in :mod:`manifres.stability.studies`) and
``<study>.png`` to ``--out`` (default ``manifres-out/``) and prints a short summary. Usage
mistakes (unknown study, bad option, unwritable output folder, bad edge-list file, no CUDA)
print one line on stderr and exit with status 2; ``main`` returns the status instead of
raising ``SystemExit``, so it can be called from Python.

New subcommands register themselves like :func:`add_study_command`: a function that takes the
``subparsers`` object and sets ``handler`` (``args -> exit status``) on its parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import ManifresError

__all__ = ["main", "build_parser", "add_study_command", "add_tour_command"]

PROG = "manifres"


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return vals


def _common(p: argparse.ArgumentParser, *, tensors: bool = True) -> None:
    g = p.add_argument_group("output and runtime")
    g.add_argument(
        "--out",
        default="manifres-out",
        metavar="DIR",
        help="output folder, created if needed (default: %(default)s)",
    )
    g.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default: %(default)s)")
    g.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch CPU threads while the study runs; its matrices are small, for "
        "which one thread is fastest (default: %(default)s)",
    )
    g.add_argument("--no-plot", action="store_true", help="write the JSON only (no matplotlib needed)")
    if tensors:
        g.add_argument(
            "--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)"
        )
        g.add_argument(
            "--dtype",
            choices=("float32", "float64"),
            default="float64",
            help="floating-point type (default: %(default)s)",
        )


def add_study_command(subparsers: Any) -> None:
    """Register ``manifres study <name>`` and its five studies on ``subparsers``."""
    from .graph.datasets import GRAPH_NAMES

    fmt = argparse.ArgumentDefaultsHelpFormatter
    study = subparsers.add_parser(
        "study",
        help="run an eigenvalue stability study; writes <study>.json and <study>.png",
        description="Run an eigenvalue stability study. Each writes <study>.json (stable schema, "
        "see manifres.stability.studies) and <study>.png to --out; every default runs in "
        "seconds on a laptop CPU.",
    )
    names = study.add_subparsers(
        dest="study",
        metavar="STUDY",
        required=True,
        title="studies (manifres study STUDY --help for options)",
    )

    p = names.add_parser(
        "depth",
        help="layer-by-layer profile of a deep residual (or plain) stack",
        description="Depth profile of h <- h + a*act(W h + b) (or act(W h + b) with --plain): "
        "activation norms and forward gain, gradient norms and cosines per layer, the product "
        "bound (1 + e)^L against the end-to-end singular values, and QR (Lyapunov) growth "
        "rates.",
        formatter_class=fmt,
    )
    p.add_argument("--width", type=_positive_int, default=16, help="layer width")
    p.add_argument("--depth", type=_positive_int, default=64, help="number of layers")
    p.add_argument("--scale", type=float, default=0.5, help="residual scale a")
    p.add_argument("--activation", choices=("tanh", "relu", "identity"), default="tanh")
    p.add_argument("--batch", type=_positive_int, default=8, help="input batch size")
    p.add_argument("--plain", action="store_true", help="profile the plain stack instead")
    _common(p)
    p.set_defaults(handler=_run_study)

    p = names.add_parser(
        "weyl",
        help="the Weyl band [1 - e, 1 + e] on random residual matrices",
        description="Checks that every singular value of I + W lies in [1 - e, 1 + e], "
        "e = ||W||_2, on random Gaussian, symmetric, skew-symmetric and rank-one matrices with "
        "norms spread over (0, --max-norm].",
        formatter_class=fmt,
    )
    p.add_argument("--width", type=_positive_int, default=32, help="matrix size n")
    p.add_argument("--samples", type=_positive_int, default=256, help="number of matrices")
    p.add_argument("--max-norm", type=_positive_float, default=2.0, help="largest e = ||W||_2")
    _common(p)
    p.set_defaults(handler=_run_study)

    p = names.add_parser(
        "diffusion",
        help="stability and consensus rate of the graph step I - alpha L",
        description="lambda_max, lambda_2, the largest stable step 2/lambda_max, the consensus "
        "rate of x <- (I - alpha L) x, whether alpha is stable, and a simulated run.",
        formatter_class=fmt,
    )
    p.add_argument(
        "--graph",
        default="karate",
        metavar="NAME|PATH",
        help=f"one of {', '.join(GRAPH_NAMES)}, or the path of an edge-list file "
        "(lines 'i j [weight]', '#' comments)",
    )
    p.add_argument(
        "--nodes",
        type=_positive_int,
        default=20,
        help="node count of a named graph (grid: a k x k grid, k = floor(sqrt(nodes)))",
    )
    p.add_argument("--alpha", type=_positive_float, default=1.0, help="step size under test")
    p.add_argument(
        "--normalization",
        choices=("none", "sym", "rw"),
        default="sym",
        help="Laplacian normalization (none: L = D - A)",
    )
    p.add_argument("--steps", type=_nonneg_int, default=30, help="simulated diffusion steps")
    _common(p, tensors=False)
    p.set_defaults(handler=_run_study)

    p = names.add_parser(
        "plain-vs-residual",
        help="vanishing gradients: plain vs residual stack against depth",
        description="First-layer gradient norm of a plain stack h <- act(W h + b) and a "
        "residual stack h <- h + a*act(W h + b) with the same weights and input, at each depth.",
        formatter_class=fmt,
    )
    p.add_argument(
        "--depths",
        type=_int_list,
        default=[10, 100, 1000],
        metavar="L1,L2,...",
        help="comma-separated depths",
    )
    p.add_argument("--width", type=_positive_int, default=32, help="layer width")
    p.add_argument("--scale", type=float, default=1.0, help="residual scale a")
    p.add_argument("--activation", choices=("tanh", "relu", "identity"), default="tanh")
    p.add_argument("--batch", type=_positive_int, default=16, help="input batch size")
    _common(p)
    p.set_defaults(handler=_run_study)

    p = names.add_parser(
        "scale",
        help="sweep of the residual scale a: stable to unstable, gradients fighting",
        description="For log-spaced a in [--min-scale, --max-scale]: max ||J_l - I||, max "
        "spectral radius, end-to-end log singular values against the Weyl product bound, and "
        "the alignment of consecutive layers' gradients.",
        formatter_class=fmt,
    )
    p.add_argument("--width", type=_positive_int, default=16, help="layer width")
    p.add_argument("--depth", type=_positive_int, default=32, help="number of layers")
    p.add_argument("--min-scale", type=_positive_float, default=0.01, help="smallest a")
    p.add_argument("--max-scale", type=_positive_float, default=10.0, help="largest a")
    p.add_argument("--num-scales", type=_positive_int, default=13, help="number of values of a")
    p.add_argument("--activation", choices=("tanh", "relu", "identity"), default="tanh")
    p.add_argument("--batch", type=_positive_int, default=8, help="input batch size")
    _common(p)
    p.set_defaults(handler=_run_study)


# ------------------------------------------------------------------------------ manifres tour
def add_tour_command(subparsers: Any) -> None:
    """Register ``manifres tour``: run the gallery examples (the runner is :mod:`manifres.tour`)."""
    p = subparsers.add_parser(
        "tour",
        help="run every gallery example; writes its figures and summary.md",
        description="Run every gallery example (examples/<section>/plot_*.py) in turn, save its "
        "figures as PNG files and a one-line summary per example (summary.md) to --out. An "
        "example that fails is reported and the others still run; the exit status is then 1.",
    )
    p.add_argument("--quick", action="store_true", help="run every example at its small (CI) size")
    p.add_argument(
        "--out",
        default="tour-out",
        metavar="DIR",
        help="output folder, created if needed (default: %(default)s)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only the examples whose section/plot_name contains NAME (repeatable)",
    )
    p.add_argument(
        "--examples",
        default=None,
        metavar="DIR",
        help="the examples folder (default: $MANIFRES_EXAMPLES, else examples/ beside the package)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch CPU threads while the examples run; their tensors are small, for which one "
        "thread is fastest (default: %(default)s)",
    )
    p.set_defaults(handler=_run_tour)


def _run_tour(args: argparse.Namespace) -> int:
    from .tour import run_from_args  # lazy: the command starts without the tour's imports

    return run_from_args(args)


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The ``manifres`` argument parser with its subcommands."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="manifres: manifold residual flows; command-line studies."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_study_command(sub)
    add_tour_command(sub)
    return parser


def _check_out(out: str) -> Path:
    """Fail early, without creating anything, unless ``out`` is (or can be made) a writable
    folder: probe the folder itself or its nearest existing ancestor."""
    path = Path(out)
    probe_dir = path
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        if not probe_dir.is_dir():
            raise NotADirectoryError(f"{str(probe_dir)!r} is not a folder")
        fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".manifres-write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write to the output folder {out!r}: {reason}") from None
    return path


def _make_out(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write to the output folder {str(path)!r}: {reason}") from None


def _study_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"command", "study", "handler", "out", "threads", "no_plot"}
    kw = {k: v for k, v in vars(args).items() if k not in skip}
    if args.study == "diffusion" and kw.get("normalization") == "none":
        kw["normalization"] = None
    if args.study in ("plain-vs-residual", "scale"):
        kw["progress"] = True
    if args.study == "scale" and args.min_scale > args.max_scale:
        raise UsageError(f"--min-scale {args.min_scale} is above --max-scale {args.max_scale}")
    return kw


def _run_study(args: argparse.Namespace) -> int:
    from .stability import studies

    runner = {
        "depth": studies.depth_study,
        "weyl": studies.weyl_study,
        "diffusion": studies.diffusion_study,
        "plain-vs-residual": studies.plain_vs_residual_study,
        "scale": studies.scale_study,
    }[args.study]
    kw = _study_kwargs(args)
    if "device" in kw:
        studies.resolve_device(kw["device"])
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                "figures need matplotlib (pip install manifres[plot]); or pass --no-plot"
            ) from None
    out = _check_out(args.out)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = runner(**kw)
        figure = None if args.no_plot else result.draw()
    finally:
        torch.set_num_threads(threads)
    _make_out(out)
    stem = args.study
    json_path = out / f"{stem}.json"
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(result.payload(), f, indent=1, allow_nan=False)
        f.write("\n")
    for line in result.summary:
        print(line)
    written = [str(json_path)]
    if figure is not None:
        png_path = out / f"{stem}.png"
        figure.savefig(png_path, dpi=110)
        written.append(str(png_path))
    print("wrote " + " and ".join(written))
    return 0


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``manifres`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a usage mistake (reported in one line on stderr).

    Examples
    --------
    >>> main(["study", "nonsense"])  # argparse prints the usage error on stderr
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage errors
        return _exit_status(exc)
    try:
        return args.handler(args)
    except (UsageError, ManifresError, OSError) as exc:
        msg = " ".join(str(exc).split())
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
