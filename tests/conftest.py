import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on the two cores: one thread each, or the workers' kernels fight
    # over the cores (oneDNN's spinning threads made a 0.04 s step take 2.7 s when oversubscribed).
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
