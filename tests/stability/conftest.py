import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Run each stability test on one torch thread, then restore the count.

    The studies use small matrices; on the 2-core CI machines a busy second core turns
    OpenMP's barriers into millisecond waits (a 520-wide Krylov run: 0.5 s on one thread,
    20 s on two under load).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
