import os

import pytest
import torch

# geomstats picks its backend at first import, whoever imports it first: make it pytorch
os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _keep_global_state():
    """Fail a test that leaks a default-dtype change (geomstats sets float64 on import)."""
    before = torch.get_default_dtype()
    yield
    after = torch.get_default_dtype()
    torch.set_default_dtype(before)
    assert after == before, f"test changed torch's default dtype to {after}"
