import json
import math

import torch

from manifres.stability import (
    compare_plain_residual,
    depth_profile,
    jacobian_spectrum,
    lyapunov_exponents,
    scale_sweep,
    weyl_band,
)
from manifres.stability.results import to_plain

from ._models import tanh_stack


def _roundtrip(record):
    d = record.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    return d


def test_every_record_is_json_safe(dtype):
    stack = tanh_stack(3, 2, 0.5, dtype)
    x = torch.randn(2, 3, dtype=dtype)
    spec = _roundtrip(jacobian_spectrum(stack[0], x))
    assert set(spec["eigenvalues"]) == {"real", "imag"} and len(spec["eigenvalues"]["real"]) == 2
    _roundtrip(weyl_band(torch.randn(4, 3, 3, dtype=dtype)))
    prof = _roundtrip(depth_profile(stack, x))
    assert prof["depth"] == 2 and len(prof["grad_cosines"]) == 1
    _roundtrip(lyapunov_exponents(stack, x))
    sweep = _roundtrip(scale_sweep(stack, x, [0.1, 1.0]))
    assert len(sweep["profiles"]) == 2
    _roundtrip(compare_plain_residual((1, 2), width=3, batch=2, dtype=dtype))


def test_to_plain_conventions():
    assert to_plain(torch.tensor([1.0, math.nan, -math.inf])) == [1.0, None, None]
    assert to_plain(torch.tensor(True)) is True
    assert to_plain(torch.tensor([1, 2])) == [1, 2]
    assert to_plain({"a": (1.5, float("inf")), "b": torch.float32}) == {"a": [1.5, None], "b": "float32"}
    assert to_plain(torch.tensor([1 + 2j])) == {"real": [1.0], "imag": [2.0]}
