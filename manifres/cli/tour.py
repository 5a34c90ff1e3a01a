"""The ``manifres tour``: run every gallery example, save its figures and a summary.

The gallery ships inside the package, in ``manifres/gallery/`` (sphinx-gallery layout: one
folder per section, scripts named ``plot_*.py``), so the tour runs from an installed wheel as
well as from a source checkout. Each script is a complete story that runs as a plain script;
it reads ``MANIFRES_QUICK=1`` to shrink its sizes and ends by setting a module-level
``SUMMARY`` string with its key figure. The tour runs the scripts one after the other in this
process, each isolated from the others (see :func:`run_example`), saves every matplotlib
figure they leave open as a PNG, and writes ``summary.md``, one line per example.

Examples
--------
>>> from manifres.cli.tour import example_name
>>> example_name("gallery/geometry/plot_geodesic_flow.py")
'geometry/plot_geodesic_flow'
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import runpy
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .. import _config
from .._validation import check_int
from ..errors import UnknownChoiceError

__all__ = [
    "ExampleResult",
    "TourReport",
    "find_examples",
    "list_examples",
    "example_name",
    "run_example",
    "run_tour",
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
        """Whether the example ran to the end, set its ``SUMMARY`` and every figure was saved."""
        return self.error is None


@dataclass
class TourReport:
    """Results of a tour: one :class:`ExampleResult` per example, and the output folder."""

    out: Path
    results: list[ExampleResult] = field(default_factory=list)

    @property
    def failures(self) -> list[ExampleResult]:
        """The examples that raised, did not set ``SUMMARY``, or lost a figure."""
        return [r for r in self.results if not r.ok]

    @property
    def summary_path(self) -> Path:
        """Path of the ``summary.md`` written by :func:`run_tour`."""
        return self.out / "summary.md"

    @property
    def seconds(self) -> float:
        """Total wall time of the examples."""
        return sum(r.seconds for r in self.results)


def _shipped_gallery() -> Path:
    """The gallery folder inside the installed (or checked out) ``manifres`` package."""
    return Path(str(resources.files("manifres").joinpath("gallery")))


def find_examples(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the gallery folder.

    Looks at, in order: ``path``; the ``MANIFRES_EXAMPLES`` environment variable; the gallery
    shipped inside the package (``manifres/gallery``, found with :mod:`importlib.resources`).

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
        If the folder does not exist; the message says where it looked.
    """
    if path is not None:
        candidate = Path(path)
    elif os.environ.get(EXAMPLES_ENV):
        candidate = Path(os.environ[EXAMPLES_ENV])
    else:
        candidate = _shipped_gallery()
    if candidate.is_dir():
        return candidate.resolve()
    raise FileNotFoundError(
        f"no examples folder found at {candidate} (the gallery ships in the package as "
        f"manifres/gallery; set {EXAMPLES_ENV} or pass --examples to use another folder)"
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


@contextlib.contextmanager
def _isolated(path: Path, quick: bool) -> Iterator[None]:
    """Run a script as ``python path`` would, in a fresh temporary working directory, and
    put back afterwards every piece of global state an example may change: the quick switch
    and ``sys.argv``; torch's default dtype and device, grad mode, anomaly mode, number of
    threads and RNG states; NumPy's and Python's RNGs; matplotlib's rcParams; the warning
    filters; manifres' validation switch; the working directory."""
    import matplotlib
    import numpy as np
    import torch

    saved_env = os.environ.get(QUICK_ENV)
    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    saved_torch = (
        torch.get_default_dtype(),
        torch.get_default_device(),
        torch.is_grad_enabled(),
        torch.is_anomaly_enabled(),
        torch.is_anomaly_check_nan_enabled(),
        torch.get_num_threads(),
        torch.get_rng_state(),
    )
    saved_cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    saved_np_rng = np.random.get_state()  # noqa: NPY002 - the legacy global state is what leaks
    saved_py_rng = random.getstate()
    os.environ[QUICK_ENV] = "1" if quick else "0"
    sys.argv = [str(path)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(_config._preserved())
        stack.enter_context(matplotlib.rc_context())
        stack.enter_context(warnings.catch_warnings())
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="manifres-tour-"))
        os.chdir(workdir)
        try:
            yield
        finally:
            os.chdir(saved_cwd)  # before the temporary directory goes
            if saved_env is None:
                os.environ.pop(QUICK_ENV, None)
            else:
                os.environ[QUICK_ENV] = saved_env
            sys.argv = saved_argv
            dtype, device, grad, anomaly, check_nan, threads, rng = saved_torch
            torch.set_default_dtype(dtype)
            if torch.get_default_device() != device:  # no device context where there was none
                torch.set_default_device(None if device == torch.device("cpu") else device)
            torch.set_grad_enabled(grad)
            torch.autograd.set_detect_anomaly(anomaly, check_nan)
            torch.set_num_threads(threads)
            torch.set_rng_state(rng)
            if saved_cuda_rng is not None:
                torch.cuda.set_rng_state_all(saved_cuda_rng)
            np.random.set_state(saved_np_rng)  # noqa: NPY002
            random.setstate(saved_py_rng)


def _unmanaged_figures(scope: dict[str, Any]) -> list[Any]:
    """Figures in a script's globals that pyplot does not manage (built with ``Figure()``, as
    :mod:`manifres.stability.plots` does), in order of appearance, without duplicates."""
    from matplotlib.figure import Figure

    found: dict[int, Figure] = {}
    for value in scope.values():
        # pyplot numbers its figures (and the number stays after plt.close): skip those
        if isinstance(value, Figure) and value.canvas.manager is None and not hasattr(value, "number"):
            found.setdefault(id(value), value)
    return list(found.values())


def _headline(exc: BaseException, path: Path | None = None) -> str:
    """``Type: message``, and the line of ``path`` the exception came from."""
    line = traceback.format_exception_only(exc)[-1].strip()
    if path is not None:
        where = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        if where:
            line += f" (line {where[-1].lineno} of {path.name})"
    return line


def run_example(
    path: str | os.PathLike[str], out: str | os.PathLike[str], quick: bool = True
) -> ExampleResult:
    """Run one example script in this process and save the figures it leaves open.

    The script runs as ``__main__`` with the Agg backend and ``MANIFRES_QUICK`` set from
    ``quick``, in a temporary working directory (removed afterwards, with anything the script
    wrote there). Global state it changes is put back (torch's default dtype and device, grad
    and anomaly modes, threads and RNGs; NumPy's and Python's RNGs; matplotlib's rcParams;
    warning filters; manifres' validation switch; ``sys.argv``; the working directory). Its
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
        script it came from; then the traceback), did not set a string ``SUMMARY``, drew no
        figure, or a figure could not be saved (the other figures are still saved). An
        example's error never escapes (``KeyboardInterrupt`` does).

    Notes
    -----
    Selects the Agg backend for the whole process (``matplotlib.use("Agg", force=True)``) and
    closes every open pyplot figure before and after the script.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path).resolve()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    name = example_name(path)
    stem = name.replace("/", "__")
    plt.close("all")
    errors: list[str] = []
    summary: Any = ""
    figures: list[Path] = []
    start = time.perf_counter()
    with _isolated(path, quick):
        scope: dict[str, Any] = {}
        try:
            scope = runpy.run_path(str(path), run_name="__main__")
            summary = scope.get("SUMMARY", "")
            if not isinstance(summary, str) or not summary:
                errors.append(f"{name} did not set a module-level SUMMARY string")
        except BaseException as exc:  # noqa: BLE001 - report and go on with the other examples
            if isinstance(exc, KeyboardInterrupt):
                raise
            full = "".join(traceback.format_exception(exc)).rstrip()
            errors.append(_headline(exc, path) + "\n" + full)
        seconds = time.perf_counter() - start
        for old in out.glob(f"{stem}*.png"):  # figures of an earlier run of this example
            if re.fullmatch(rf"{re.escape(stem)}(_\d+)?\.png", old.name):
                old.unlink()
        drawn = [plt.figure(num) for num in plt.get_fignums()] + _unmanaged_figures(scope)
        for k, fig in enumerate(drawn):
            target = out / f"{stem}{'' if len(drawn) == 1 else f'_{k + 1}'}.png"
            try:
                fig.savefig(target, dpi=100)
            except Exception as exc:  # noqa: BLE001 - one lost figure is reported, not fatal
                errors.append(f"figure {k + 1} could not be saved as {target.name}: {_headline(exc)}")
                continue
            figures.append(target)
        plt.close("all")
    if not errors and not drawn:
        errors.append(f"{name} drew no figure")
    error = "\n".join(errors) if errors else None
    return ExampleResult(name, seconds, summary if isinstance(summary, str) else "", tuple(figures), error)


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
    ParameterError
        If ``threads`` is not a positive integer.

    Notes
    -----
    Scripts run in this process (one import of torch for all of them) with the Agg matplotlib
    backend, which the tour selects with ``matplotlib.use("Agg", force=True)``.
    """
    import torch
    from tqdm.auto import tqdm

    if threads is not None:
        threads = check_int(threads, "threads", "run_tour", minimum=1)
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
