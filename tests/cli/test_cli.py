"""The ``manifres`` command: studies write JSON and PNG; every mistake is one line, status 2;
a bug is one line, status 3; main never raises."""

import argparse
import functools
import inspect
import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch
from torch import nn

from manifres import cli
from manifres.cli import main
from manifres.experiments import studies
from manifres.nn import activations

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"

TINY = {
    "depth": ["--width", "3", "--depth", "3", "--batch", "2"],
    "weyl": ["--width", "3", "--samples", "8"],
    "diffusion": ["--graph", "karate", "--steps", "3"],
    "plain-vs-residual": ["--depths", "2,5", "--width", "3", "--batch", "2"],
    "scale": ["--width", "3", "--depth", "2", "--num-steps", "3", "--batch", "2"],
}


@pytest.mark.parametrize("study", sorted(TINY))
def test_each_study_writes_json_and_png(tmp_path, capsys, study):
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    assert main(["study", study, *TINY[study], "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # restored
    payload = json.loads((out / f"{study}.json").read_text())
    assert payload["schema"] == "manifres.stability.study" and payload["schema_version"] == 2
    assert payload["study"] == study and isinstance(payload["results"], dict)
    assert (out / f"{study}.png").read_bytes()[:8] == PNG
    printed = capsys.readouterr().out
    assert f"{study}.json" in printed and f"{study}.png" in printed


def test_study_payload_contents(tmp_path):
    out = tmp_path / "o"
    assert (
        main(
            ["study", "plain-vs-residual", "--depths", "2,30", "--width", "4", "--out", str(out), "--no-plot"]
        )
        == 0
    )
    assert not (out / "plain-vs-residual.png").exists()
    res = json.loads((out / "plain-vs-residual.json").read_text())["results"]["comparison"]
    assert res["depths"] == [2, 30] and res["plain_log10_grad_norm"][1] < res["plain_log10_grad_norm"][0]
    assert (
        main(
            [
                "study",
                "diffusion",
                "--graph",
                "cycle",
                "--nodes",
                "6",
                "--normalization",
                "none",
                "--step",
                "0.6",
                "--out",
                str(out),
                "--no-plot",
            ]
        )
        == 0
    )
    ds = json.loads((out / "diffusion.json").read_text())["results"]["stability"]
    assert ds["lambda_max"] == pytest.approx(4.0) and ds["stable"] is False


def test_diffusion_from_an_edge_list_file(tmp_path):
    f = tmp_path / "edges.txt"
    f.write_text("# square\n0 1\n1 2\n2 3\n3 0\n")
    assert (
        main(
            [
                "study",
                "diffusion",
                "--graph",
                str(f),
                "--step",
                "0.25",
                "--normalization",
                "none",
                "--out",
                str(tmp_path / "o"),
                "--no-plot",
            ]
        )
        == 0
    )
    ds = json.loads((tmp_path / "o" / "diffusion.json").read_text())["results"]["stability"]
    assert ds["consensus_rate"] == pytest.approx(0.5) and ds["num_nodes"] == 4


def _usage_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "is deprecated" not in line]
    assert len(lines) == 1 and needle in err and "Traceback" not in err, err
    return err


def test_usage_mistakes_exit_2_with_one_line(tmp_path, capsys):
    _usage_error(capsys, ["study", "nonsense"], "invalid choice")
    _usage_error(capsys, ["study", "depth", "--width", "-3"], "width must be in [1, 512], got -3")
    _usage_error(capsys, ["study", "depth", "--width", "three"], "expected an integer")
    _usage_error(capsys, ["nothing"], "invalid choice")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _usage_error(
        capsys,
        ["study", "weyl", "--width", "2", "--samples", "2", "--out", str(blocker / "sub")],
        "cannot write to the output folder",
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 two\n")
    _usage_error(capsys, ["study", "diffusion", "--graph", str(bad), "--out", str(tmp_path / "o")], "line 2")
    _usage_error(
        capsys,
        ["study", "diffusion", "--graph", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")],
        "neither a known graph",
    )
    _usage_error(
        capsys, ["study", "depth", "--device", "nonsense-device", "--out", str(tmp_path / "o")], "device"
    )
    assert not (tmp_path / "o").exists()  # nothing written before the checks


def _numeric_options():
    """(study, option, is_integer) for every numeric option of every study's parser."""
    parser = cli.build_parser()
    study_parsers = parser._subparsers._group_actions[0].choices["study"]._subparsers._group_actions[0]
    found = []
    for name, sub in study_parsers.choices.items():
        for action in sub._actions:
            if action.type in (cli._integer, cli._real, cli._integers, cli._threads):
                found.append((name, action.option_strings[0], action.type is not cli._real))
    return found


NUMERIC = _numeric_options()


def test_numeric_options_are_found():
    assert ("plain-vs-residual", "--step", False) in NUMERIC and ("depth", "--seed", True) in NUMERIC
    assert {study for study, _, _ in NUMERIC} == set(studies.STUDIES)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "huge", "-huge"])
@pytest.mark.parametrize("study, option, integer", NUMERIC, ids=[f"{s}{o}" for s, o, _ in NUMERIC])
def test_every_numeric_option_rejects_nonsense(tmp_path, capsys, study, option, integer, bad):
    """Not finite, or far out of range: status 2, one line on stderr, nothing written."""
    value = {"huge": "1" + "0" * 30, "-huge": "-1" + "0" * 30}.get(bad, bad)
    if not integer and bad in ("huge", "-huge"):
        value = value.replace("1" + "0" * 30, "1e30")
    out = tmp_path / "o"
    _usage_error(
        capsys, ["study", study, *TINY[study], option, value, "--out", str(out)], option.strip("-")[:3]
    )
    assert not out.exists()


def test_plain_vs_residual_nan_step_writes_no_json_of_nulls(tmp_path, capsys):
    out = tmp_path / "o"
    _usage_error(capsys, ["study", "plain-vs-residual", "--scale", "nan", "--out", str(out)], "finite")
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["study", "depth", "--depth", "0"], "depth must be in [1, 100000], got 0"),
        (["study", "depth", "--depth", "1000000000"], "depth must be in [1, 100000]"),
        (["study", "depth", "--depth", "50000", "--width", "512"], "numbers at once"),
        (["study", "weyl", "--samples", "0"], "samples"),
        (["study", "weyl", "--max-norm", "0"], "max_norm"),
        (["study", "diffusion", "--step", "-0.5"], "step"),
        (["study", "diffusion", "--nodes", "0"], "nodes"),
        (["study", "diffusion", "--graph", "complete", "--nodes", "100000"], "edges"),
        (["study", "plain-vs-residual", "--depths", "10,0"], "each depth"),
        (["study", "plain-vs-residual", "--depths", ","], "non-empty"),
        (["study", "scale", "--num-steps", "0"], "num_steps"),
        (["study", "scale", "--min-step", "0"], "min_step"),
        (["study", "scale", "--min-step", "2", "--max-step", "1"], "min_step 2 is above max_step 1"),
        (["study", "depth", "--threads", "0"], "threads"),
        (["study", "depth", "--seed", "-1"], "seed"),
    ],
)
def test_out_of_range_option_exits_2(tmp_path, capsys, argv, needle):
    out = tmp_path / "o"
    _usage_error(capsys, [*argv, "--out", str(out)], needle)
    assert not out.exists()


@pytest.mark.parametrize(
    "old, new, value",
    [("--scale", "step", 0.25), ("--min-scale", "min_step", 0.5), ("--max-scale", "max_step", 2.0)],
)
def test_deprecated_step_options_still_work_and_warn_once(tmp_path, capsys, old, new, value):
    study = "depth" if old == "--scale" else "scale"
    out = tmp_path / "o"
    assert main(["study", study, *TINY[study], old, str(value), "--out", str(out), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert err.count("deprecated") == 1 and f"{old} is deprecated; use --{new.replace('_', '-')}" in err
    assert json.loads((out / f"{study}.json").read_text())["params"][new] == value


def test_num_scales_alias_sets_num_steps(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["study", "scale", "--width", "3", "--depth", "2", "--batch", "2", "--num-scales", "2"]
    assert main([*argv, "--out", str(out), "--no-plot"]) == 0
    assert "--num-scales is deprecated" in capsys.readouterr().err
    assert json.loads((out / "scale.json").read_text())["params"]["num_steps"] == 2


def test_help_hides_the_deprecated_spellings(capsys):
    assert main(["study", "scale", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--min-step" in text and "--num-steps" in text and "--min-scale" not in text


def test_study_defaults_come_from_the_signatures(monkeypatch):
    def fake_depth(
        *,
        width=7,
        depth=3,
        step=0.125,
        activation="relu",
        batch=2,
        plain=False,
        seed=5,
        dtype=torch.float32,
        device="cpu",
    ):
        raise AssertionError("not run")

    monkeypatch.setitem(studies.STUDIES, "depth", fake_depth)
    args = cli.build_parser().parse_args(["study", "depth"])
    got = {k: getattr(args, k) for k in ("width", "depth", "step", "activation", "batch", "plain", "seed")}
    assert got == dict(width=7, depth=3, step=0.125, activation="relu", batch=2, plain=False, seed=5)
    assert args.dtype == "float32" and args.device == "cpu"


def test_a_switch_on_by_default_gets_a_no_option(monkeypatch):
    @functools.wraps(studies.depth_study)
    def plain_by_default(**kwargs):
        raise AssertionError("not run")

    sig = inspect.signature(studies.depth_study)
    plain_by_default.__signature__ = sig.replace(
        parameters=[p.replace(default=True) if p.name == "plain" else p for p in sig.parameters.values()]
    )
    monkeypatch.setitem(studies.STUDIES, "depth", plain_by_default)
    assert cli.build_parser().parse_args(["study", "depth"]).plain is True
    assert cli.build_parser().parse_args(["study", "depth", "--no-plain"]).plain is False


def test_parser_defaults_equal_every_studys_signature():
    parser = cli.build_parser()
    for name, fn in studies.STUDIES.items():
        args = vars(parser.parse_args(["study", name]))
        for param in inspect.signature(fn).parameters.values():
            if param.name == "progress" or param.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            expected = param.default
            if isinstance(expected, torch.dtype):
                expected = str(expected).removeprefix("torch.")
            elif isinstance(expected, tuple):
                expected = list(expected)
            elif expected is None:
                expected = "none"
            assert args[param.name] == expected, (name, param.name)


def test_activation_choices_come_from_the_registry(tmp_path, monkeypatch):
    monkeypatch.setitem(activations.ACTIVATIONS, "softsign", nn.Softsign)
    out = tmp_path / "o"
    assert (
        main(["study", "depth", *TINY["depth"], "--activation", "softsign", "--out", str(out), "--no-plot"])
        == 0
    )
    assert json.loads((out / "depth.json").read_text())["params"]["activation"] == "softsign"


def test_normalization_choices_match_the_graph_module():
    from manifres.graph.laplacian import NORMALIZATIONS

    assert cli._NORMALIZATIONS == tuple("none" if n is None else n for n in NORMALIZATIONS)


def test_every_study_has_help_and_a_summary():
    assert set(cli._TEXT) == set(studies.STUDIES) == set(cli.SUMMARIES)
    for name, fn in studies.STUDIES.items():
        own = [
            name
            for name, p in inspect.signature(fn).parameters.items()
            if name not in cli._RUNTIME and p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        assert sorted(own) == sorted(cli._TEXT[name].options), name


def test_summary_is_printed_by_the_command(tmp_path, capsys):
    argv = ["study", "plain-vs-residual", "--depths", "2,5", "--width", "3", "--step", "0.5"]
    assert main([*argv, "--out", str(tmp_path), "--no-plot"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "first-layer gradient norm, width 3, tanh, residual step 0.5:"
    assert printed[1].split() == ["depth", "plain", "residual"]
    assert [line.split()[0] for line in printed[2:4]] == ["2", "5"]


def _raising(exc):
    """The weyl study (same signature, so the same options) raising ``exc`` when run."""

    @functools.wraps(studies.weyl_study)
    def study(**kwargs):
        raise exc

    return study


def test_unexpected_error_is_one_line_with_status_3(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MANIFRES_TRACEBACK", raising=False)
    monkeypatch.setitem(studies.STUDIES, "weyl", _raising(RuntimeError("a bug in a study")))
    assert main(["study", "weyl", "--out", str(tmp_path), "--no-plot"]) == 3
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "manifres: internal error: RuntimeError: a bug in a study "
        "(run with --traceback or MANIFRES_TRACEBACK=1 for the traceback)"
    ]


def test_traceback_on_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(studies.STUDIES, "weyl", _raising(RuntimeError("a bug in a study")))
    assert main(["--traceback", "study", "weyl", "--out", str(tmp_path), "--no-plot"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "a bug in a study" in err.splitlines()[-1]
    monkeypatch.setenv("MANIFRES_TRACEBACK", "1")
    assert main(["study", "weyl", "--out", str(tmp_path), "--no-plot"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_is_status_130(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(studies.STUDIES, "weyl", _raising(KeyboardInterrupt()))
    assert main(["study", "weyl", "--out", str(tmp_path), "--no-plot"]) == 130
    assert capsys.readouterr().err.strip() == "manifres: error: interrupted"


def test_help_and_version_return_0(capsys):
    assert main(["--help"]) == 0
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip().endswith(tuple("0123456789") + ("unknown",))


def test_parser_errors_raise_no_system_exit():
    with pytest.raises(cli.UsageError, match="invalid choice"):
        cli.build_parser().parse_args(["study", "nonsense"])
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    _usage_error(
        capsys, ["study", "depth", "--device", "cuda", "--out", str(tmp_path / "o")], "CUDA is not available"
    )


def test_help_lists_studies_and_defaults(capsys):
    assert main(["study", "--help"]) == 0
    text = capsys.readouterr().out
    for study in TINY:
        assert study in text
    assert main(["study", "plain-vs-residual", "--help"]) == 0
    text = capsys.readouterr().out
    assert "10, 100, 1000" in text and "--step" in text and "--scale" not in text


def test_console_script_and_python_dash_m(tmp_path):
    eps = [e for e in entry_points(group="console_scripts") if e.name == "manifres"]
    assert eps and eps[0].value == "manifres.cli:main"
    proc = subprocess.run(
        [sys.executable, "-m", "manifres", "study", "unknown-study"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "invalid choice" in proc.stderr


@pytest.mark.cuda
def test_cuda_study_runs(tmp_path):
    assert (
        main(["study", "depth", *TINY["depth"], "--device", "cuda", "--out", str(tmp_path), "--no-plot"]) == 0
    )


def test_diffusion_former_option_spellings_still_work(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["study", "diffusion", "--graph", "cycle", "--nodes", "6", "--normalization", "none"]
    assert main([*args, "--alpha", "0.25", "--steps", "3", "--out", str(out), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "--alpha is deprecated; use --step" in err and "--steps is deprecated; use --simulate" in err
    payload = json.loads((out / "diffusion.json").read_text())
    assert payload["params"]["step"] == 0.25 and payload["params"]["simulate"] == 3
    assert payload["results"]["stability"]["step"] == 0.25


def test_an_undecided_certificate_is_not_called_unstable():
    from manifres.cli import _VERDICT

    assert _VERDICT[None].startswith("undecided") and _VERDICT[False] == "UNSTABLE"
