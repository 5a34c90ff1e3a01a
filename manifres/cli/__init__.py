"""The ``manifres`` command: run stability studies and the gallery tour from a shell.

::

    manifres study depth              # depth profile of a residual tanh stack
    manifres study weyl               # the Weyl bound on random residual matrices
    manifres study diffusion --graph karate
    manifres study plain-vs-residual  # first-layer gradient norm at depths 10, 100, 1000
    manifres study scale              # sweep of the residual step a
    manifres tour --quick             # run every gallery example (manifres.cli.tour)

Each study (:data:`manifres.experiments.STUDIES`) writes ``<study>.json`` (schema in
:mod:`manifres.experiments.studies`) and ``<study>.png`` to ``--out`` (default
``manifres-out/``) and prints a short summary. A study's options, their types and defaults
are read from its function's signature; only their help texts are written here.

Exit status (:func:`main` returns it and never raises):

* 0: success;
* 1: ``manifres tour``: an example failed (each failure is listed on stderr);
* 2: a usage mistake: an unknown study or option, a number that is not finite or out of
  range, an unwritable output folder, a bad edge-list file, no CUDA. One line on stderr, and
  nothing is written;
* 3: an unexpected error (a bug): one line on stderr; the traceback too with ``--traceback``
  or ``MANIFRES_TRACEBACK=1``;
* 130: interrupted (Ctrl-C).

Renamed options: the residual step is ``--step`` (``--min-step``, ``--max-step``,
``--num-steps``) in every study, the diffusion study's simulated steps are ``--simulate``; the
former ``--scale`` (``--min-scale``, ``--max-scale``, ``--num-scales``), ``--alpha`` and
``--steps`` still work and print one deprecation line on stderr.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from .._validation import SUPPORTED_DTYPES, check_int
from ..errors import ManifresError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments.studies import Study

__all__ = ["main", "build_parser", "add_study_command", "add_tour_command"]

PROG = "manifres"
#: Environment variable that asks for the traceback of an unexpected error.
TRACEBACK_ENV = "MANIFRES_TRACEBACK"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes raise :class:`UsageError` (one line, no usage block)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


# ------------------------------------------------------------------------------ option types
def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _integers(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _threads(text: str) -> int:
    cpus = os.cpu_count() or 1
    try:
        return check_int(_integer(text), "threads", PROG, minimum=1, maximum=cpus)
    except ParameterError:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [1, {cpus}] (the CPUs of this machine), got {text!r}"
        ) from None


# ------------------------------------------------------------------------------ deprecated options
#: Former spellings of the residual step's options, by the study parameter they set.
DEPRECATED_OPTIONS = {
    "step": ("--scale", "--alpha"),
    "min_step": ("--min-scale",),
    "max_step": ("--max-scale",),
    "num_steps": ("--num-scales",),
    "simulate": ("--steps",),
}


class _Deprecated(argparse.Action):
    """A hidden former spelling of an option: sets the same value, prints one warning line."""

    def __init__(self, option_strings: Sequence[str], dest: str, replacement: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{PROG}: warning: {option_string} is deprecated; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


# ------------------------------------------------------------------------------ manifres study
@dataclass(frozen=True)
class _StudyText:
    """What the command says about a study: its one-line help, description, option helps."""

    help: str
    description: str
    options: dict[str, str]


# Help texts only: which studies exist, their options, types and defaults come from
# manifres.experiments.STUDIES and the functions' signatures.
_TEXT = {
    "depth": _StudyText(
        "layer-by-layer profile of a deep residual (or plain) stack",
        "Depth profile of h <- h + a*act(W h + b) (or act(W h + b) with --plain): activation "
        "norms and forward gain, gradient norms and cosines per layer, the product bound "
        "(1 + e)^L against the end-to-end singular values, and QR (Lyapunov) growth rates.",
        {
            "width": "layer width",
            "depth": "number of layers",
            "step": "residual step a",
            "activation": "activation act",
            "batch": "input batch size",
            "plain": "profile the plain stack instead",
        },
    ),
    "weyl": _StudyText(
        "the Weyl band [1 - e, 1 + e] on random residual matrices",
        "Checks that every singular value of I + W lies in [1 - e, 1 + e], e = ||W||_2, on "
        "random Gaussian, symmetric, skew-symmetric and rank-one matrices with norms spread "
        "over (0, --max-norm].",
        {"width": "matrix size n", "samples": "number of matrices", "max_norm": "largest e = ||W||_2"},
    ),
    "diffusion": _StudyText(
        "stability and consensus rate of the graph step I - h L",
        "lambda_max, lambda_2, the largest stable step 2/lambda_max, the consensus rate of "
        "x <- (I - h L) x, whether the step h is stable (proven, or undecided when the bounds "
        "cannot tell), and a simulated run.",
        {
            "graph": "a named graph or the path of an edge-list file (lines 'i j [weight]', '#' comments)",
            "nodes": "node count of a named graph (grid: a k x k grid, k = floor(sqrt(nodes)))",
            "step": "step h under test",
            "normalization": "Laplacian normalization (none: L = D - A)",
            "simulate": "simulated diffusion steps",
        },
    ),
    "plain-vs-residual": _StudyText(
        "vanishing gradients: plain vs residual stack against depth",
        "First-layer gradient norm of a plain stack h <- act(W h + b) and a residual stack "
        "h <- h + a*act(W h + b) with the same weights and input, at each depth.",
        {
            "depths": "comma-separated depths",
            "width": "layer width",
            "step": "residual step a",
            "activation": "activation act",
            "batch": "input batch size",
        },
    ),
    "scale": _StudyText(
        "sweep of the residual step a: stable to unstable, gradients fighting",
        "For log-spaced a in [--min-step, --max-step]: max ||J_l - I||, max spectral radius, "
        "end-to-end log singular values against the Weyl product bound, and the alignment of "
        "consecutive layers' gradients.",
        {
            "width": "layer width",
            "depth": "number of layers",
            "min_step": "smallest a",
            "max_step": "largest a",
            "num_steps": "number of values of a",
            "activation": "activation act",
            "batch": "input batch size",
        },
    ),
}

# Laplacian normalizations as the command spells them ("none" is None); a test keeps them
# equal to manifres.graph.laplacian.NORMALIZATIONS, which the command does not import (it
# would load torch-geometric at every start).
_NORMALIZATIONS = ("none", "sym", "rw")
_DTYPES = {str(d).removeprefix("torch."): d for d in SUPPORTED_DTYPES}
# Parameters every study shares: options of the "output and runtime" group.
_RUNTIME = ("seed", "dtype", "device", "progress")


def _choices(name: str) -> tuple[str, ...] | None:
    if name == "activation":
        from ..nn.activations import ACTIVATIONS

        return tuple(ACTIVATIONS)
    if name == "normalization":
        return _NORMALIZATIONS
    return None


def _add_option(group: Any, name: str, default: Any, help: str) -> None:
    """Add ``--name`` (and its former spelling, if any), typed by its default."""
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):  # a switch; one that is on by default also gets --no-NAME
        action = argparse.BooleanOptionalAction if default else "store_true"
        group.add_argument(flag, dest=name, action=action, default=default, help=help)
        return
    kind: dict[str, Any]
    if isinstance(default, (tuple, list)):
        kind = dict(type=_integers, default=list(default), metavar="L1,L2,...")
    elif isinstance(default, int):
        kind = dict(type=_integer, default=default)
    elif isinstance(default, float):
        kind = dict(type=_real, default=default)
    else:
        choices = _choices(name)
        shown = "none" if default is None else default
        kind = dict(default=shown, choices=choices) if choices else dict(default=shown, metavar="NAME|PATH")
    group.add_argument(flag, dest=name, help=help, **kind)
    if name in DEPRECATED_OPTIONS:
        kind.pop("default")
        group.add_argument(
            *DEPRECATED_OPTIONS[name],
            dest=name,
            action=_Deprecated,
            replacement=flag,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
            **kind,
        )


def _output_options(p: argparse.ArgumentParser, runtime: dict[str, Any]) -> None:
    """``--out --seed --threads --no-plot`` (and ``--device --dtype`` for tensor studies)."""
    g = p.add_argument_group("output and runtime")
    g.add_argument(
        "--out",
        default="manifres-out",
        metavar="DIR",
        help="output folder, created if needed (default: %(default)s)",
    )
    if "seed" in runtime:
        g.add_argument(
            "--seed", type=_integer, default=runtime["seed"], help="random seed (default: %(default)s)"
        )
    g.add_argument(
        "--threads",
        type=_threads,
        default=1,
        help="torch CPU threads while the study runs; its matrices are small, for which one "
        "thread is fastest (default: %(default)s)",
    )
    g.add_argument("--no-plot", action="store_true", help="write the JSON only (no matplotlib needed)")
    if "device" in runtime:
        g.add_argument(
            "--device",
            default=str(runtime["device"]),
            help="torch device, e.g. cpu or cuda (default: %(default)s)",
        )
    if "dtype" in runtime:
        g.add_argument(
            "--dtype",
            choices=tuple(_DTYPES),
            default=str(runtime["dtype"]).removeprefix("torch."),
            help="floating-point type (default: %(default)s)",
        )


def add_study_command(subparsers: Any) -> None:
    """Register ``manifres study <name>``, one subcommand per study of
    :data:`manifres.experiments.STUDIES`, on ``subparsers``."""
    from ..experiments.studies import STUDIES
    from ..graph.datasets import GRAPH_NAMES

    study = subparsers.add_parser(
        "study",
        help="run an eigenvalue stability study; writes <study>.json and <study>.png",
        description="Run an eigenvalue stability study. Each writes <study>.json (stable schema, "
        "see manifres.experiments.studies) and <study>.png to --out; every default runs in "
        "seconds on a laptop CPU.",
    )
    names = study.add_subparsers(
        dest="study",
        metavar="STUDY",
        required=True,
        title="studies (manifres study STUDY --help for options)",
    )
    for name, fn in STUDIES.items():
        text = _TEXT[name]
        p = names.add_parser(
            name,
            help=text.help,
            description=text.description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        runtime = {}
        for param in inspect.signature(fn).parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:  # deprecated keywords: no option
                continue
            if param.name in _RUNTIME:
                runtime[param.name] = param.default
                continue
            help = text.options[param.name]
            if param.name == "graph":
                help = f"one of {', '.join(GRAPH_NAMES)}; or {help}"
            _add_option(p, param.name, param.default, help)
        _output_options(p, runtime)
        p.set_defaults(handler=_run_study)


def _device(text: str) -> torch.device:
    """``torch.device(text)``, checking that CUDA (MPS) is there when asked for."""
    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"unknown device {text!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device {text!r} asked for, but CUDA is not available here "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {text!r} asked for, but MPS is not available here")
    return dev


def _study_kwargs(args: argparse.Namespace, fn: Callable[..., Study]) -> dict[str, Any]:
    """The study's keyword arguments from the parsed options (device and dtype resolved)."""
    kw = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if name == "progress":
            kw[name] = True
        elif name == "device":
            kw[name] = _device(args.device)
        elif name == "dtype":
            kw[name] = _DTYPES[args.dtype]
        elif name == "normalization":
            kw[name] = None if args.normalization == "none" else args.normalization
        else:
            kw[name] = getattr(args, name)
    return kw


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


# ------------------------------------------------------------------------------ summaries
def _sci(log10: Any) -> str:
    """A number given by its base-10 log, as ``m.mmme+X`` (0 or inf out of range)."""
    v = float(log10)
    if not math.isfinite(v):
        return "0" if v < 0 else "inf"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"


def _depth_summary(s: Study) -> list[str]:
    p, prof, lyap = s.params, s.results["profile"], s.results["lyapunov"]
    kind = "plain" if p["plain"] else f"residual (step {p['step']:g})"
    return [
        f"{kind} {p['activation']} stack, depth {p['depth']}, width {p['width']}",
        f"end-to-end log sigma_max = {float(prof.log_sigma_max.mean()):.4g} "
        f"(bound {float(prof.log_upper_bound.mean()):.4g}), log sigma_min = "
        f"{float(prof.log_sigma_min.mean()):.4g} (bound {float(prof.log_lower_bound.mean()):.4g})",
        f"first-layer gradient norm 1e{float(prof.log10_grad_norms[0]):.2f}, "
        f"largest Lyapunov exponent {float(lyap.exponents[0]):.4g} per layer",
    ]


def _weyl_summary(s: Study) -> list[str]:
    p, band = s.params, s.results["band"]
    gap = torch.minimum(band.sigma_min - band.lower, band.upper - band.sigma_max)
    return [
        f"Weyl bound holds for {int(band.holds.sum())} of {p['samples']} random "
        f"{p['width']}x{p['width']} matrices",
        f"smallest distance to the band edge: {float(gap.min()):.3g} (negative = violation; "
        f"tolerance {band.tol:.2g} (1 + e))",
    ]


_VERDICT = {True: "stable", False: "UNSTABLE", None: "undecided (the proven bounds cannot tell)"}


def _diffusion_summary(s: Study) -> list[str]:
    p, ds = s.params, s.results["stability"]
    return [
        f"{p['graph_name']}: {ds.num_nodes} nodes, {ds.num_edges} edges, "
        f"normalization={p['normalization']!r}",
        f"lambda_max = {ds.lambda_max:.6g}, lambda_2 = {ds.lambda_2:.6g}, max stable step "
        f"2/lambda_max = {ds.max_step:.6g}",
        f"step h = {p['step']:g}: {_VERDICT[ds.stable]}, consensus rate "
        f"{ds.consensus_rate:.6g} per step",
    ]


def _plain_vs_residual_summary(s: Study) -> list[str]:
    p, cmp = s.params, s.results["comparison"]
    lines = [
        f"first-layer gradient norm, width {p['width']}, {p['activation']}, residual step {p['step']:g}:",
        f"{'depth':>8} {'plain':>12} {'residual':>12}",
    ]
    for i, d in enumerate(cmp.depths):
        plain, resid = _sci(cmp.plain_log10_grad_norm[i]), _sci(cmp.residual_log10_grad_norm[i])
        lines.append(f"{d:>8} {plain:>12} {resid:>12}")
    return lines


def _scale_summary(s: Study) -> list[str]:
    p, sw = s.params, s.results["sweep"]
    lines = [
        f"residual {p['activation']} stack, depth {p['depth']}, width {p['width']}:",
        f"{'a':>8} {'max e_l':>9} {'log smax':>9} {'bound':>9} {'mean cos':>9} {'anti':>6}",
    ]
    for i in range(len(sw.steps)):
        lines.append(
            f"{float(sw.steps[i]):>8.3g} {float(sw.max_residual_norm[i]):>9.3g} "
            f"{float(sw.log_sigma_max[i]):>9.3g} {float(sw.log_upper_bound[i]):>9.3g} "
            f"{float(sw.mean_grad_cosine[i]):>9.3f} {float(sw.anti_aligned_fraction[i]):>6.2f}"
        )
    return lines


#: The console summary of each study, by name (a study without one prints none).
SUMMARIES: dict[str, Callable[[Study], list[str]]] = {
    "depth": _depth_summary,
    "weyl": _weyl_summary,
    "diffusion": _diffusion_summary,
    "plain-vs-residual": _plain_vs_residual_summary,
    "scale": _scale_summary,
}


def _run_study(args: argparse.Namespace) -> int:
    from ..experiments.studies import STUDIES

    fn = STUDIES[args.study]
    kw = _study_kwargs(args, fn)
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
        result = fn(**kw)
        figure = None if args.no_plot else result.draw()
    finally:
        torch.set_num_threads(threads)
    _make_out(out)
    json_path = out / f"{args.study}.json"
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(result.payload(), f, indent=1, allow_nan=False)
        f.write("\n")
    for line in SUMMARIES.get(args.study, lambda s: [])(result):
        print(line)
    written = [str(json_path)]
    if figure is not None:
        png_path = out / f"{args.study}.png"
        figure.savefig(png_path, dpi=110)
        written.append(str(png_path))
    print("wrote " + " and ".join(written))
    return EXIT_OK


# ------------------------------------------------------------------------------ manifres tour
def add_tour_command(subparsers: Any) -> None:
    """Register ``manifres tour``: run the gallery examples (see :mod:`manifres.cli.tour`)."""
    p = subparsers.add_parser(
        "tour",
        help="run every gallery example; writes its figures and summary.md",
        description="Run every gallery example (<section>/plot_*.py, shipped in the package) in "
        "turn, save its figures as PNG files and a one-line summary per example (summary.md) to "
        "--out. An example that fails is reported and the others still run; the exit status is "
        "then 1.",
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
        help="the examples folder (default: $MANIFRES_EXAMPLES, else the gallery in the package)",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        default=1,
        help="torch CPU threads while the examples run; their tensors are small, for which one "
        "thread is fastest (default: %(default)s)",
    )
    p.set_defaults(handler=_run_tour)


def _run_tour(args: argparse.Namespace) -> int:
    from .tour import run_tour  # lazy: the command starts without the tour's imports

    report = run_tour(
        out=args.out, quick=args.quick, only=args.only, examples=args.examples, threads=args.threads
    )
    n_fig = sum(len(r.figures) for r in report.results)
    size = "quick" if args.quick else "full"
    print(
        f"manifres tour: {len(report.results)} examples at {size} size in {report.seconds:.1f} s; "
        f"{n_fig} figures in {report.out}"
    )
    print(f"  summary: {report.summary_path}")
    for r in report.failures:
        print(f"  FAILED {r.name}: {(r.error or '').splitlines()[0]}", file=sys.stderr)
    return EXIT_FAILED if report.failures else EXIT_OK


# ------------------------------------------------------------------------------ parser and main
def build_parser() -> argparse.ArgumentParser:
    """The ``manifres`` argument parser with its subcommands."""
    from .. import __version__

    parser = _Parser(prog=PROG, description="manifres: manifold residual flows; command-line studies.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help=f"print the traceback of an unexpected error (or set {TRACEBACK_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_study_command(sub)
    add_tour_command(sub)
    return parser


def _say(prog: str, kind: str, message: object) -> None:
    """One line on stderr: ``prog: kind: message`` with the message's whitespace collapsed."""
    text = " ".join(str(message).split())
    try:
        print(f"{prog}: {kind}: {text}", file=sys.stderr)
    except (OSError, ValueError):  # stderr closed: the status still tells
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``manifres`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when a tour example failed, 2 for a usage mistake,
        3 for an unexpected error, 130 when interrupted; each failure is reported in one line
        on stderr (see the module notes). ``main`` never raises.

    Examples
    --------
    >>> main(["study", "nonsense"])  # the error line goes to stderr
    2
    """
    show_traceback = os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        show_traceback = show_traceback or args.traceback
        return args.handler(args)
    except UsageError as exc:
        _say(exc.prog, "error", exc)
        return EXIT_USAGE
    except (ManifresError, OSError) as exc:
        _say(PROG, "error", exc)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        _say(PROG, "error", "interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line (the traceback on request), never a crash
        if show_traceback:
            traceback.print_exc()
        hint = "" if show_traceback else f" (run with --traceback or {TRACEBACK_ENV}=1 for the traceback)"
        _say(PROG, "internal error", f"{type(exc).__name__}: {exc}{hint}")
        return EXIT_INTERNAL
