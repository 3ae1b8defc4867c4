import matplotlib
import numpy as np
import pytest

# Set in-process only: an MPLBACKEND variable would reach the notebook kernels
# that the chapter tests start, and stop their inline figures.
matplotlib.use("Agg")


@pytest.fixture(scope="session")
def astronaut():
    from oaenet_helpers import faces

    return faces.sample_image("astronaut")


@pytest.fixture(scope="session")
def grace_hopper():
    from oaenet_helpers import faces

    return faces.sample_image("grace_hopper")


@pytest.fixture(scope="session")
def astronaut_face(astronaut):
    from oaenet_helpers import faces

    return faces.detect_face(astronaut)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
