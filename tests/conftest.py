import os

import pytest

# Keep grading and notebooks on one thread each: the suite shares 2 cores with nbval's kernels.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def grading_settings():
    """``use(**values)`` installs grading settings (defaults, nbgrader_config.py, then ``values``) for one test."""
    from traitlets.config import Config

    from nncourse import settings

    saved = list(settings._current)

    def use(**values):
        return settings.use(settings.load(Config({"Grading": values})))

    yield use
    settings._current[:] = saved
