"""The ``manifres tour``: run every gallery example, save its figures and a summary.

The gallery lives in ``examples/`` (sphinx-gallery layout: one folder per section, scripts named
``plot_*.py``). Each script is a complete story that runs as a plain script; it reads
``MANIFRES_QUICK=1`` to shrink its sizes and ends by setting a module-level ``SUMMARY`` string
with its key figure. The tour runs the scripts one after the other in this process, saves every
matplotlib figure they leave open as a PNG, and writes ``summary.md``, one line per example.

Examples
--------
>>> from manifres.tour import example_name
>>> example_name("examples/geometry/plot_geodesic_flow.py")
'geometry/plot_geodesic_flow'
"""

from __future__ import annotations

import os
import re
import runpy
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UnknownChoiceError

if TYPE_CHECKING:
    import argparse

__all__ = [
    "ExampleResult",
    "TourReport",
    "find_examples",
    "list_examples",
    "example_name",
    "run_example",
    "run_tour",
    "run_from_args",
]

#: Environment variable that points the tour at an examples folder.
EXAMPLES_ENV = "MANIFRES_EXAMPLES"
#: Environment variable that the examples read to pick their quick (CI) size.
QUICK_ENV = "MANIFRES_QUICK"


@dataclass(frozen=True)
class ExampleResult:
    """Outcome of one example: its name, wall time, summary line, figures, and error if any."""

    name: str
    seconds: float
    summary: str = ""
    figures: tuple[Path, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the example ran to the end and set its ``SUMMARY``."""
        return self.error is None


@dataclass
class TourReport:
    """Results of a tour: one :class:`ExampleResult` per example, and the output folder."""

    out: Path
    results: list[ExampleResult] = field(default_factory=list)

    @property
    def failures(self) -> list[ExampleResult]:
        """The examples that raised or did not set ``SUMMARY``."""
        return [r for r in self.results if not r.ok]

    @property
    def summary_path(self) -> Path:
        """Path of the ``summary.md`` written by :func:`run_tour`."""
        return self.out / "summary.md"

    @property
    def seconds(self) -> float:
        """Total wall time of the examples."""
        return sum(r.seconds for r in self.results)


def find_examples(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the gallery folder.

    Looks at, in order: ``path``; the ``MANIFRES_EXAMPLES`` environment variable; ``examples/``
    beside the ``manifres`` package (a source checkout or an editable install).

    Parameters
    ----------
    path : str or PathLike, optional
        An explicit examples folder.

    Returns
    -------
    Path
        The resolved folder.

    Raises
    ------
    FileNotFoundError
        If no candidate exists; the message says where it looked and how to point the tour at
        the folder.
    """
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get(EXAMPLES_ENV):
        candidates = [Path(os.environ[EXAMPLES_ENV])]
    else:
        candidates = [Path(__file__).resolve().parent.parent / "examples"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"no examples folder found (looked at {looked}). The gallery ships with the "
        f"source checkout: run from a clone of manifres, or set {EXAMPLES_ENV}=/path/to/examples."
    )


def example_name(path: str | os.PathLike[str]) -> str:
    """Name of an example: ``section/plot_stem`` (its folder and file stem)."""
    p = Path(path)
    return f"{p.parent.name}/{p.stem}"


def list_examples(root: str | os.PathLike[str], only: Sequence[str] | None = None) -> list[Path]:
    """List the ``plot_*.py`` scripts under ``root``, sorted by section folder then file name.

    Parameters
    ----------
    root : str or PathLike
        The examples folder.
    only : sequence of str, optional
        Keep the examples whose name (``section/plot_stem``) contains one of these strings.

    Raises
    ------
    UnknownChoiceError
        If a string in ``only`` matches no example; the message lists the names.
    """
    scripts = sorted(Path(root).glob("*/plot_*.py"), key=lambda p: (p.parent.name, p.name))
    if not only:
        return scripts
    names = [example_name(p) for p in scripts]
    unknown = [o for o in only if not any(o in n for n in names)]
    if unknown:
        raise UnknownChoiceError(f"no example matches {unknown}; the examples are: {', '.join(names)}")
    return [p for p, n in zip(scripts, names, strict=True) if any(o in n for o in only)]


@contextmanager
def _isolated(path: Path, quick: bool) -> Iterator[None]:
    """Run a script as ``python path``: its argv and env, and restore torch's global state."""
    import torch

    saved_env = os.environ.get(QUICK_ENV)
    saved_argv = sys.argv
    saved_dtype = torch.get_default_dtype()
    saved_grad = torch.is_grad_enabled()
    saved_rng = torch.get_rng_state()
    os.environ[QUICK_ENV] = "1" if quick else "0"
    sys.argv = [str(path)]
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = saved_env
        sys.argv = saved_argv
        torch.set_default_dtype(saved_dtype)
        torch.set_grad_enabled(saved_grad)
        torch.set_rng_state(saved_rng)


def _unmanaged_figures(scope: dict) -> list:
    """Figures in a script's globals that pyplot does not manage (built with ``Figure()``, as
    :mod:`manifres.stability.plots` does), in order of appearance, without duplicates."""
    from matplotlib.figure import Figure

    found: dict[int, Figure] = {}
    for value in scope.values():
        # pyplot numbers its figures (and the number stays after plt.close): skip those
        if isinstance(value, Figure) and value.canvas.manager is None and not hasattr(value, "number"):
            found.setdefault(id(value), value)
    return list(found.values())


def run_example(
    path: str | os.PathLike[str], out: str | os.PathLike[str], quick: bool = True
) -> ExampleResult:
    """Run one example script in this process and save the figures it leaves open.

    The script runs as ``__main__`` with the Agg backend and ``MANIFRES_QUICK`` set from
    ``quick``; torch's default dtype, grad mode and RNG state are restored afterwards. Its
    figures (those open in pyplot, then :class:`~matplotlib.figure.Figure` objects held in its
    global variables, such as the figures of :mod:`manifres.stability.plots`) are saved as
    ``<out>/<section>__<stem>[_k].png`` and closed.

    Parameters
    ----------
    path : str or PathLike
        The ``plot_*.py`` script.
    out : str or PathLike
        Folder for the PNGs (created if missing).
    quick : bool, default True
        Run at the quick (CI) size.

    Returns
    -------
    ExampleResult
        With ``error`` set if the script raised (first line: the exception and the line of the
        script it came from; then the traceback), did not set a string ``SUMMARY``, or drew no
        figure. An example's error never escapes (``KeyboardInterrupt`` does).

    Notes
    -----
    Selects the Agg backend for the whole process (``matplotlib.use("Agg", force=True)``) and
    closes every open pyplot figure before and after the script.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = example_name(path)
    plt.close("all")
    error = None
    summary = ""
    scope: dict = {}
    start = time.perf_counter()
    try:
        with _isolated(path, quick):
            scope = runpy.run_path(str(path), run_name="__main__")
        summary = scope.get("SUMMARY", "")
        if not isinstance(summary, str) or not summary:
            error = f"{name} did not set a module-level SUMMARY string"
    except BaseException as exc:  # noqa: BLE001 - report and go on with the other examples
        if isinstance(exc, KeyboardInterrupt):
            raise
        headline = traceback.format_exception_only(exc)[-1].strip()
        where = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        if where:
            headline += f" (line {where[-1].lineno} of {path.name})"
        error = headline + "\n" + "".join(traceback.format_exception(exc)).rstrip()
    seconds = time.perf_counter() - start
    figures = []
    stem = name.replace("/", "__")
    for old in out.glob(f"{stem}*.png"):  # figures of an earlier run of this example
        if re.fullmatch(rf"{re.escape(stem)}(_\d+)?\.png", old.name):
            old.unlink()
    drawn = [plt.figure(num) for num in plt.get_fignums()] + _unmanaged_figures(scope)
    for k, fig in enumerate(drawn):
        suffix = "" if len(drawn) == 1 else f"_{k + 1}"
        target = out / f"{stem}{suffix}.png"
        fig.savefig(target, dpi=100)
        figures.append(target)
    plt.close("all")
    if error is None and not figures:
        error = f"{name} drew no figure"
    return ExampleResult(name, seconds, str(summary), tuple(figures), error)


def _write_summary(report: TourReport, quick: bool) -> None:
    size = "quick" if quick else "full"
    lines = [
        "# manifres tour",
        "",
        f"{len(report.results)} examples at {size} size in {report.seconds:.1f} s; "
        f"{len(report.failures)} failed.",
        "",
        "| example | seconds | summary |",
        "|---|---:|---|",
    ]
    for r in report.results:
        text = r.summary if r.ok else f"FAILED: {(r.error or '').splitlines()[0]}"
        text = text.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r.name} | {r.seconds:.1f} | {text} |")
    if report.failures:
        lines += ["", "## Failures", ""]
        for r in report.failures:
            lines += [f"### {r.name}", "", "```", r.error or "", "```", ""]
    report.summary_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_tour(
    out: str | os.PathLike[str] = "tour-out",
    quick: bool = False,
    only: Sequence[str] | None = None,
    examples: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> TourReport:
    """Run the gallery examples, save their figures and write ``summary.md`` into ``out``.

    An example that fails is recorded (name and error) and the tour goes on with the others.

    Parameters
    ----------
    out : str or PathLike, default ``"tour-out"``
        Output folder (created if missing).
    quick : bool, default False
        Run every example at its quick (CI) size.
    only : sequence of str, optional
        Run only the examples whose ``section/plot_stem`` name contains one of these strings.
    examples : str or PathLike, optional
        The examples folder; see :func:`find_examples`.
    progress : bool or None, default None
        Show a tqdm progress bar; ``None`` shows it only on a terminal.
    threads : int, optional
        Number of torch intra-op threads during the tour (restored afterwards); default:
        torch's. The examples use small tensors: on a busy machine ``threads=1`` avoids
        threads waiting for each other and can be many times faster.

    Returns
    -------
    TourReport
        Its ``failures`` list is empty when every example succeeded.

    Raises
    ------
    FileNotFoundError
        If the examples folder cannot be found.
    UnknownChoiceError
        If ``only`` matches no example.

    Notes
    -----
    Scripts run in this process (one import of torch for all of them) with the Agg matplotlib
    backend, which the tour selects with ``matplotlib.use("Agg", force=True)``.
    """
    import torch
    from tqdm.auto import tqdm

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"manifres tour: threads must be a positive int, got {threads!r}")
    root = find_examples(examples)
    scripts = list_examples(root, only)
    report = TourReport(Path(out).resolve())
    report.out.mkdir(parents=True, exist_ok=True)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    disable = None if progress is None else not progress
    bar = tqdm(scripts, desc="manifres tour", unit="example", disable=disable)
    try:
        for path in bar:
            bar.set_postfix_str(example_name(path))
            report.results.append(run_example(path, report.out, quick=quick))
    finally:
        bar.close()
        torch.set_num_threads(saved_threads)
    _write_summary(report, quick)
    return report


def run_from_args(args: argparse.Namespace) -> int:
    """Handler of ``manifres tour`` (see :mod:`manifres.cli`): run the tour, say where to look.

    ``args`` has ``out``, ``quick``, ``only`` (list or None), ``examples`` and ``threads``.
    Returns the exit status: 0 when every example succeeded, 1 when one failed (each failure is
    listed on stderr). A missing examples folder or an ``only`` that matches nothing raises
    (``FileNotFoundError``, :class:`~manifres.errors.UnknownChoiceError`), which the command
    reports in one line with status 2.
    """
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
    return 1 if report.failures else 0
