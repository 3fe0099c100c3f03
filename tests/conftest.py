"""Fixtures shared by every test folder."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test on one thread. Tests of tiny networks and ODE solves are thousands of small operations: a second
    thread only adds a barrier per operation, which stalls for a scheduler quantum whenever another process holds a
    core (measured on tests/schemes/test_ode.py: 386 s instead of 4 s; an ODENet learning run 300 s instead of 8 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
