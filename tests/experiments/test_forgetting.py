"""Tests of manifres.experiments.forgetting: forgetting of task 1 in both adapter modes."""

import pytest
import torch

from manifres.experiments import forgetting_experiment


@pytest.fixture(autouse=True)
def _one_thread():
    """Small-model training: one intra-op thread (two threads on a loaded 2-core machine
    spin in OpenMP barriers and run 10-50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_forgetting_experiment_numbers(dtype):
    r = forgetting_experiment(seed=0, steps=60, dtype=dtype)
    per, shared = r["per_task"], r["shared"]
    assert per["forgetting"] == 0.0 and per["task1_max_change"] == 0.0
    assert per["task1_before"] == per["task1_after"]
    # shared: task 2 overwrites task 1's adapter -- forgetting much larger than the fit error
    assert shared["forgetting"] > 10 * shared["task1_before"]
    assert shared["task1_max_change"] > 0.05
    assert shared["task1_before"] == pytest.approx(per["task1_before"], rel=1e-6)
    assert per["task2"] < 0.1 * shared["task1_after"]


def test_forgetting_experiment_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    forgetting_experiment(steps=2, n_samples=8)
    assert torch.equal(torch.get_rng_state(), state)
