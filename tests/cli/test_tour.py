"""The ``manifres tour``: runs examples in isolation, writes PNGs and summary.md, reports
failures (a raising example, a figure that cannot be saved) while the others run."""

from __future__ import annotations

import os
import random
import sys
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import manifres
from manifres.cli import main
from manifres.cli.tour import example_name, find_examples, list_examples, run_example, run_tour
from manifres.errors import ParameterError, UnknownChoiceError

GALLERY = Path(manifres.__file__).resolve().parent / "gallery"

OK = """
    '''
    A fine example
    ==============
    '''
    import os
    import matplotlib.pyplot as plt
    QUICK = os.environ.get("MANIFRES_QUICK", "0") == "1"
    plt.plot([0, 1], [0, 1 if QUICK else 2])
    SUMMARY = f"quick={QUICK}"
"""
TWO_FIGURES = """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    closed = plt.figure()
    plt.close(closed)  # closed by the example: not saved
    plt.figure(); plt.plot([0, 1])
    detached = Figure()  # built without pyplot, as manifres.stability.plots does
    detached.subplots().plot([1, 0])
    SUMMARY = "two figures"
"""
BROKEN = """
    import matplotlib.pyplot as plt
    plt.plot([0, 1])
    raise RuntimeError("this example is broken on purpose")
"""
NO_SUMMARY = """
    import matplotlib.pyplot as plt
    plt.plot([0, 1])
"""
NO_FIGURE = """
    SUMMARY = "nothing drawn"
"""
LEAKY = """
    import os, random, sys, warnings
    import matplotlib, numpy as np, torch, manifres
    import matplotlib.pyplot as plt
    plt.plot([0, 1])
    warnings.simplefilter("ignore")  # also silences set_detect_anomaly's warning
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    torch.manual_seed(123)
    torch.autograd.set_detect_anomaly(True)
    torch.set_num_threads(torch.get_num_threads() + 1)
    torch.set_default_device("meta")
    np.random.seed(123)
    random.seed(123)
    matplotlib.rcParams["lines.linewidth"] = 9.0
    manifres.set_validation(True)
    manifres.validation().__enter__()  # entered, never left
    sys.argv.append("--junk")
    os.chdir(os.path.dirname(os.getcwd()))
    SUMMARY = "changed global state"
"""
WORKDIR = """
    import os
    import matplotlib.pyplot as plt
    with open("scratch.txt", "w") as f:  # relative: lands in the example's own folder
        f.write("x")
    plt.plot([0, 1])
    SUMMARY = os.getcwd()
"""
UNSAVABLE = """
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    broken = plt.figure()
    broken.savefig = refuse  # the tour's savefig of this figure raises
    plt.plot([0, 1])
    fine = plt.figure()
    plt.plot([1, 0])
    SUMMARY = "one figure cannot be saved"
"""


def _gallery(root: Path, scripts: dict[str, str]) -> Path:
    """Write ``{"section/plot_name": source}`` as a small gallery under ``root``."""
    for name, source in scripts.items():
        path = root / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    (root / "README.txt").write_text("Gallery\n=======\n", encoding="utf-8")
    return root


@pytest.fixture
def gallery(tmp_path):
    return _gallery(
        tmp_path / "examples",
        {"alpha/plot_ok": OK, "alpha/plot_two_figures": TWO_FIGURES, "beta/plot_broken": BROKEN},
    )


def test_example_name_and_listing(gallery):
    names = [example_name(p) for p in list_examples(gallery)]
    assert names == ["alpha/plot_ok", "alpha/plot_two_figures", "beta/plot_broken"]
    assert [example_name(p) for p in list_examples(gallery, only=["two", "broken"])] == [
        "alpha/plot_two_figures",
        "beta/plot_broken",
    ]
    (gallery / "alpha" / "helper.py").write_text("x = 1\n")  # not a plot_ script: ignored
    assert len(list_examples(gallery)) == 3


def test_only_matching_nothing_lists_the_examples(gallery):
    with pytest.raises(UnknownChoiceError, match="alpha/plot_ok") as info:
        list_examples(gallery, only=["nonexistent"])
    assert "nonexistent" in str(info.value)


def test_run_example_quick_and_full(gallery, tmp_path):
    out = tmp_path / "out"
    before = os.environ.get("MANIFRES_QUICK")
    quick = run_example(gallery / "alpha" / "plot_ok.py", out, quick=True)
    assert quick.ok and quick.summary == "quick=True"
    assert quick.figures == (out / "alpha__plot_ok.png",)
    assert quick.figures[0].read_bytes()[:4] == b"\x89PNG"
    full = run_example(gallery / "alpha" / "plot_ok.py", out, quick=False)
    assert full.summary == "quick=False"
    assert os.environ.get("MANIFRES_QUICK") == before  # the switch is restored


def test_run_example_saves_figures_built_without_pyplot(gallery, tmp_path):
    result = run_example(gallery / "alpha" / "plot_two_figures.py", tmp_path)
    assert result.ok
    assert [p.name for p in result.figures] == [
        "alpha__plot_two_figures_1.png",
        "alpha__plot_two_figures_2.png",
    ]
    assert all(p.is_file() for p in result.figures)


def test_run_example_removes_stale_figures(gallery, tmp_path):
    stale = tmp_path / "alpha__plot_ok_3.png"
    stale.write_bytes(b"old")
    other = tmp_path / "alpha__plot_ok_extra.png"  # another example's name: kept
    other.write_bytes(b"keep")
    run_example(gallery / "alpha" / "plot_ok.py", tmp_path)
    assert not stale.exists() and other.exists()


@pytest.mark.parametrize(
    "source, message",
    [
        (BROKEN, "this example is broken on purpose"),
        (NO_SUMMARY, "did not set a module-level SUMMARY"),
        (NO_FIGURE, "drew no figure"),
    ],
)
def test_run_example_reports_failures(tmp_path, source, message):
    root = _gallery(tmp_path / "ex", {"sec/plot_bad": source})
    result = run_example(root / "sec" / "plot_bad.py", tmp_path / "out")
    assert not result.ok
    assert message in result.error


def test_run_example_restores_global_state(tmp_path):
    root = _gallery(tmp_path / "ex", {"sec/plot_leaky": LEAKY})
    argv, cwd, threads = list(sys.argv), os.getcwd(), torch.get_num_threads()
    np_rng = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy global state an example may leak
    rng, py_rng = torch.get_rng_state(), random.getstate()
    filters = list(warnings.filters)
    result = run_example(root / "sec" / "plot_leaky.py", tmp_path / "out")
    assert result.ok, result.error
    assert torch.get_default_dtype() == torch.float32
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.is_grad_enabled()
    assert not torch.is_anomaly_enabled()
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)
    assert np.array_equal(np.random.get_state()[1], np_rng)  # noqa: NPY002
    assert random.getstate() == py_rng
    assert matplotlib.rcParams["lines.linewidth"] != 9.0
    assert warnings.filters == filters
    assert not manifres.get_validation()
    assert sys.argv == argv and os.getcwd() == cwd


def test_each_example_runs_in_its_own_working_directory(tmp_path, monkeypatch):
    root = _gallery(tmp_path / "ex", {"sec/plot_a": WORKDIR, "sec/plot_b": WORKDIR})
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    report = run_tour(out=tmp_path / "out", quick=True, examples=root, progress=False)
    dirs = [Path(r.summary) for r in report.results]
    assert all(r.ok for r in report.results)
    assert dirs[0] != dirs[1] and here not in dirs and (tmp_path / "out") not in dirs
    assert not any(d.exists() for d in dirs)  # temporary: removed with what the example wrote
    assert os.getcwd() == str(here) and not (here / "scratch.txt").exists()


def test_unsavable_figure_is_reported_and_the_tour_goes_on(tmp_path):
    root = _gallery(tmp_path / "ex", {"a/plot_unsavable": UNSAVABLE, "b/plot_ok": OK})
    report = run_tour(out=tmp_path / "out", quick=True, examples=root, progress=False)
    unsavable, ok = report.results
    assert not unsavable.ok and ok.ok
    assert "figure 1 could not be saved as a__plot_unsavable_1.png: OSError: disk full" in unsavable.error
    assert [p.name for p in unsavable.figures] == ["a__plot_unsavable_2.png"]  # the other is saved
    assert (tmp_path / "out" / "a__plot_unsavable_2.png").is_file()
    assert [r.name for r in report.failures] == ["a/plot_unsavable"]
    assert "FAILED: figure 1 could not be saved" in report.summary_path.read_text(encoding="utf-8")


def test_tour_writes_summary_and_figures_and_reports_the_failure(gallery, tmp_path):
    threads = torch.get_num_threads()
    report = run_tour(out=tmp_path / "tour", quick=True, examples=gallery, progress=False, threads=1)
    assert torch.get_num_threads() == threads
    assert [r.name for r in report.results] == ["alpha/plot_ok", "alpha/plot_two_figures", "beta/plot_broken"]
    assert [r.name for r in report.failures] == ["beta/plot_broken"]
    summary = report.summary_path.read_text(encoding="utf-8")
    assert "3 examples at quick size" in summary and "1 failed" in summary
    assert "| alpha/plot_ok |" in summary and "quick=True" in summary
    assert "FAILED: RuntimeError: this example is broken on purpose (line 4 of plot_broken.py)" in summary
    assert "Traceback" in summary.split("## Failures")[1]  # the whole traceback, below the table
    pngs = sorted(p.name for p in (tmp_path / "tour").glob("*.png"))
    assert pngs == [
        "alpha__plot_ok.png",
        "alpha__plot_two_figures_1.png",
        "alpha__plot_two_figures_2.png",
        "beta__plot_broken.png",  # the figure drawn before the error is kept
    ]


def test_command_exit_status_and_message(gallery, tmp_path, capsys):
    out = tmp_path / "good"
    assert main(["tour", "--quick", "--out", str(out), "--examples", str(gallery), "--only", "plot_ok"]) == 0
    printed = capsys.readouterr().out
    assert "1 examples at quick size" in printed
    assert str(out.resolve()) in printed and "summary.md" in printed
    assert main(["tour", "--out", str(tmp_path / "bad"), "--examples", str(gallery)]) == 1
    captured = capsys.readouterr()
    assert "3 examples at full size" in captured.out
    assert "FAILED beta/plot_broken" in captured.err and "broken on purpose" in captured.err


def test_command_usage_errors(gallery, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["tour", "--examples", str(tmp_path / "missing"), "--out", out]) == 2
    assert "manifres: error: no examples folder found" in capsys.readouterr().err
    for threads in ("0", "-1", "nan", "100000"):
        assert main(["tour", "--examples", str(gallery), "--threads", threads, "--out", out]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["tour", "--examples", str(gallery), "--only", "zzz", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "no example matches ['zzz']" in err and "alpha/plot_ok" in err
    assert main(["tour", "--examples", str(gallery), "--threads", "0", "--out", out]) == 2
    assert not (tmp_path / "o").exists()  # nothing ran


def test_tour_rejects_bad_threads(gallery, tmp_path):
    with pytest.raises(ParameterError, match="threads"):
        run_tour(out=tmp_path, examples=gallery, threads=0)


def test_find_examples_order(gallery, tmp_path, monkeypatch):
    monkeypatch.setenv("MANIFRES_EXAMPLES", str(gallery))
    assert find_examples() == gallery.resolve()
    assert find_examples(gallery) == gallery.resolve()
    monkeypatch.setenv("MANIFRES_EXAMPLES", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_examples()
    monkeypatch.delenv("MANIFRES_EXAMPLES")
    assert find_examples() == GALLERY  # the gallery shipped in the package


def test_the_shipped_gallery_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MANIFRES_EXAMPLES", raising=False)
    monkeypatch.chdir(tmp_path)
    assert len(list_examples(find_examples())) >= 13


def test_tour_on_a_real_example(tmp_path):
    report = run_tour(out=tmp_path, quick=True, only=["plot_friedkin_johnsen"], progress=False, threads=1)
    (result,) = report.results
    assert result.ok, result.error
    assert "Friedkin-Johnsen" in result.summary
    assert (tmp_path / "graphs__plot_friedkin_johnsen.png").is_file()
    assert "graphs/plot_friedkin_johnsen" in (tmp_path / "summary.md").read_text(encoding="utf-8")
