import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch

from manifres.cli import main

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"

TINY = {
    "depth": ["--width", "3", "--depth", "3", "--batch", "2"],
    "weyl": ["--width", "3", "--samples", "8"],
    "diffusion": ["--graph", "karate", "--steps", "3"],
    "plain-vs-residual": ["--depths", "2,5", "--width", "3", "--batch", "2"],
    "scale": ["--width", "3", "--depth", "2", "--num-scales", "3", "--batch", "2"],
}


@pytest.mark.parametrize("study", sorted(TINY))
def test_each_study_writes_json_and_png(tmp_path, capsys, study):
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    assert main(["study", study, *TINY[study], "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # restored
    payload = json.loads((out / f"{study}.json").read_text())
    assert payload["schema"] == "manifres.stability.study" and payload["schema_version"] == 1
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
                "--alpha",
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
                "--alpha",
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
    assert "Traceback" not in err and needle in err, err
    return err


def test_usage_mistakes_exit_2_with_one_line(tmp_path, capsys):
    _usage_error(capsys, ["study", "nonsense"], "invalid choice")
    _usage_error(capsys, ["study", "depth", "--width", "-3"], "positive integer")
    _usage_error(capsys, ["nothing"], "invalid choice")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _usage_error(
        capsys,
        ["study", "weyl", "--width", "2", "--samples", "2", "--out", str(blocker / "sub")],
        "cannot write to the output folder",
    )
    assert len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 two\n")
    err = _usage_error(
        capsys, ["study", "diffusion", "--graph", str(bad), "--out", str(tmp_path / "o")], "line 2"
    )
    assert len(err.strip().splitlines()) == 1
    _usage_error(
        capsys,
        ["study", "diffusion", "--graph", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")],
        "neither a known graph",
    )
    _usage_error(
        capsys,
        ["study", "scale", "--min-scale", "2", "--max-scale", "1", "--out", str(tmp_path / "o")],
        "--min-scale",
    )
    _usage_error(
        capsys, ["study", "depth", "--device", "nonsense-device", "--out", str(tmp_path / "o")], "device"
    )
    assert not (tmp_path / "o").exists()  # nothing written before the checks


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
    assert "10, 100, 1000" in capsys.readouterr().out


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
