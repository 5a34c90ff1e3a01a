"""manifres._config: the process-wide validation default and the per-context override."""

import threading

import pytest

import manifres
from manifres import _config


@pytest.fixture(autouse=True)
def _default_off():
    assert not manifres.get_validation()
    yield
    manifres.set_validation(False)


def test_validation_block_stays_in_its_thread():
    """Thread A enters ``with validation():``; thread B, reading at the same moment (both
    held at a barrier inside A's block), still sees the default."""
    inside, read = threading.Barrier(2), threading.Barrier(2)
    seen = {}

    def a():
        with manifres.validation():
            inside.wait(timeout=10)
            seen["a"] = manifres.get_validation()
            read.wait(timeout=10)

    def b():
        inside.wait(timeout=10)
        seen["b"] = manifres.get_validation()
        read.wait(timeout=10)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert seen == {"a": True, "b": False}
    assert not manifres.get_validation()


def test_validation_off_block_stays_in_its_thread():
    manifres.set_validation(True)
    inside, read = threading.Barrier(2), threading.Barrier(2)
    seen = {}

    def a():
        with manifres.validation(False):
            inside.wait(timeout=10)
            seen["a"] = manifres.get_validation()
            read.wait(timeout=10)

    def b():
        inside.wait(timeout=10)
        seen["b"] = manifres.get_validation()
        read.wait(timeout=10)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert seen == {"a": False, "b": True}


def test_set_validation_is_process_wide():
    manifres.set_validation(True)
    seen = []
    t = threading.Thread(target=lambda: seen.append(manifres.get_validation()))
    t.start()
    t.join(timeout=10)
    assert seen == [True]


def test_block_wins_over_default_and_nests():
    manifres.set_validation(True)
    with manifres.validation(False):
        assert not manifres.get_validation()
        with manifres.validation():
            assert manifres.get_validation()
        assert not manifres.get_validation()
    assert manifres.get_validation()


def test_block_restores_after_an_error():
    with pytest.raises(RuntimeError), manifres.validation():
        raise RuntimeError("inside")
    assert not manifres.get_validation()


def test_preserved_undoes_default_and_unclosed_block():
    with _config._preserved():
        manifres.set_validation(True)
        manifres.validation().__enter__()  # entered, never left
        assert manifres.get_validation()
    assert not manifres.get_validation()
    manifres.set_validation(True)  # the default alone (no override) decides again
    assert manifres.get_validation()
