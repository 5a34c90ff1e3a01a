"""manifres.graph._cache: keys on identity, version, shape, dtype, device; never copied."""

from __future__ import annotations

import copy
import pickle

import torch

from manifres.graph._cache import GraphKey, OperatorCache


def test_key_matches_only_the_same_unmodified_tensors():
    a, b = torch.zeros(2, 3, dtype=torch.long), torch.ones(3)
    key = GraphKey((a, b), ("extra", 1))
    assert key.matches((a, b), ("extra", 1))
    assert not key.matches((a.clone(), b), ("extra", 1))  # another object, equal values
    assert not key.matches((a, None), ("extra", 1))
    assert not key.matches((a, b), ("extra", 2))
    b.add_(1.0)  # in place: a new version
    assert not key.matches((a, b), ("extra", 1))
    c = torch.zeros(2, 3, dtype=torch.long)
    key = GraphKey((c,), None)
    c.resize_(3, 3)  # a new shape (and version) of the same object
    assert not key.matches((c,), None)


def test_a_freed_tensor_never_matches_its_successor():
    cache = OperatorCache()
    a = torch.zeros(4)
    cache.put("op", (a,), None, "old")
    del a
    b = torch.zeros(4)  # may reuse the address and the id
    assert cache.get("op", (b,), None) is None


def test_inference_tensors_are_not_cached():
    cache = OperatorCache()
    with torch.inference_mode():
        a = torch.zeros(3)
    cache.put("op", (a,), None, "value")
    assert len(cache) == 0 and cache.get("op", (a,), None) is None


def test_deepcopy_and_pickle_drop_the_entries():
    cache = OperatorCache()
    a = torch.zeros(3)
    cache.put("op", (a,), None, "value")
    assert len(copy.deepcopy(cache)) == 0
    assert len(pickle.loads(pickle.dumps(cache))) == 0
    assert cache.get("op", (a,), None) == "value"
    cache.clear()
    assert len(cache) == 0
