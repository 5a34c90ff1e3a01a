"""Tests of manifres.experiments.studies: the study registry, payloads, and parameter checks."""

import dataclasses
import inspect
import json
import math
import subprocess
import sys

import pytest
import torch

from manifres.errors import DeviceError, ParameterError, UnknownChoiceError
from manifres.experiments import studies
from manifres.experiments.studies import (
    MAX_DEPTH,
    MAX_SEED,
    STUDIES,
    Study,
    depth_study,
    plain_vs_residual_study,
    scale_study,
)

TINY = {
    "depth": dict(width=3, depth=2, batch=2),
    "weyl": dict(width=3, samples=4),
    "diffusion": dict(graph="cycle", nodes=5, simulate=2),
    "plain-vs-residual": dict(depths=(2, 3), width=3, batch=2),
    "scale": dict(width=3, depth=2, num_steps=2, batch=2),
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registry_names_and_functions():
    assert list(STUDIES) == ["depth", "weyl", "diffusion", "plain-vs-residual", "scale"]
    for fn in STUDIES.values():
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
        assert all(p.default is not inspect.Parameter.empty for p in params)


@pytest.mark.parametrize("name", list(TINY))
def test_study_returns_data_and_a_json_payload(name):
    study = STUDIES[name](**TINY[name])
    assert isinstance(study, Study) and study.name == name
    assert [f.name for f in dataclasses.fields(Study)] == ["name", "params", "results", "draw"]
    payload = json.loads(json.dumps(study.payload(), allow_nan=False))
    assert payload["schema"] == "manifres.stability.study" and payload["schema_version"] == 2
    assert payload["study"] == name and set(payload["results"]) == set(study.results)


def test_payload_schema_2_names_the_step_step():
    depth = depth_study(step=0.25, **TINY["depth"]).payload()
    assert depth["params"]["step"] == 0.25 and "scale" not in depth["params"]
    assert "step_grads" in depth["results"]["profile"] and "scale_grads" not in depth["results"]["profile"]
    pvr = plain_vs_residual_study(step=0.5, **TINY["plain-vs-residual"]).payload()
    assert pvr["params"]["step"] == 0.5 and pvr["results"]["comparison"]["step"] == 0.5
    sweep = scale_study(min_step=0.1, max_step=1.0, **TINY["scale"]).payload()
    params = sweep["params"]
    assert (params["min_step"], params["max_step"], params["num_steps"]) == (0.1, 1.0, 2)
    assert "min_scale" not in params and len(sweep["results"]["sweep"]["steps"]) == 2


def test_step_reaches_the_model():
    """One layer: ||J - I|| = step * ||J_F|| at the same input, linear in the step."""
    one = {**TINY["depth"], "depth": 1}
    small = depth_study(step=0.1, **one).results["profile"].residual_norms
    large = depth_study(step=0.2, **one).results["profile"].residual_norms
    torch.testing.assert_close(large, 2 * small)


def test_scale_study_grid_is_log_spaced():
    sweep = scale_study(min_step=0.01, max_step=1.0, **{**TINY["scale"], "num_steps": 3})
    expected = torch.tensor([0.01, 0.1, 1.0], dtype=torch.float64)
    torch.testing.assert_close(sweep.results["sweep"].steps, expected)


def test_activation_from_the_registry():
    study = depth_study(activation="gelu", **TINY["depth"])
    assert study.params["activation"] == "gelu"
    with pytest.raises(UnknownChoiceError, match="'gelu'"):
        depth_study(activation="swish", **TINY["depth"])


def test_dtype_and_device_are_torch_objects():
    study = depth_study(dtype=torch.float32, device=torch.device("cpu"), **TINY["depth"])
    assert study.results["profile"].grad_norms.dtype == torch.float32
    assert study.params["dtype"] == torch.float32 and study.params["device"] == "cpu"
    with pytest.raises(UnknownChoiceError, match="dtype"):
        depth_study(dtype="float64", **TINY["depth"])
    with pytest.raises(UnknownChoiceError, match="dtype"):
        depth_study(dtype=torch.float16, **TINY["depth"])
    with pytest.raises(DeviceError, match="nonsense"):
        depth_study(device="nonsense", **TINY["depth"])


@pytest.mark.parametrize(
    "name, bad",
    [
        ("depth", dict(step=math.nan)),
        ("depth", dict(step=math.inf)),
        ("depth", dict(width=0)),
        ("depth", dict(width=10_000)),  # above the dense Jacobian limit
        ("depth", dict(depth=MAX_DEPTH + 1)),
        ("depth", dict(depth=20_000, width=512)),  # too many numbers at once
        ("depth", dict(batch=0)),
        ("depth", dict(seed=-1)),
        ("depth", dict(seed=MAX_SEED + 1)),
        ("depth", dict(width=2.0)),
        ("weyl", dict(max_norm=0.0)),
        ("weyl", dict(max_norm=-1.0)),
        ("weyl", dict(max_norm=math.nan)),
        ("weyl", dict(samples=0)),
        ("weyl", dict(samples=10**6, width=64)),
        ("diffusion", dict(step=math.nan)),
        ("diffusion", dict(step=0.0)),
        ("diffusion", dict(simulate=-1)),
        ("diffusion", dict(nodes=0)),
        ("diffusion", dict(graph="complete", nodes=100_000)),
        ("plain-vs-residual", dict(step=math.nan)),
        ("plain-vs-residual", dict(depths=())),
        ("plain-vs-residual", dict(depths=(2, 0))),
        ("plain-vs-residual", dict(depths="10")),
        ("plain-vs-residual", dict(depths=(10**9,))),
        ("plain-vs-residual", dict(width=0)),
        ("scale", dict(min_step=2.0, max_step=1.0)),
        ("scale", dict(min_step=0.0)),
        ("scale", dict(max_step=math.inf)),
        ("scale", dict(num_steps=0)),
    ],
)
def test_bad_parameter_is_a_parameter_error_before_anything_runs(name, bad, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the study started before checking its parameters")

    for fn in ("make_layers", "weyl_band", "named_graph", "compare_plain_residual"):
        monkeypatch.setattr(studies, fn, never)
    with pytest.raises(ParameterError, match=STUDIES[name].__name__):
        STUDIES[name](**{**TINY[name], **bad})


def test_stability_imports_without_experiments():
    code = (
        "import sys, manifres.stability, manifres.nn; "
        "assert not any(m.startswith('manifres.experiments') for m in sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
