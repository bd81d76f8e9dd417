"""Test-session settings shared by every test module."""

import os
import tempfile

# One OpenMP thread per worker, set before torch is imported (it reads this at import).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# scikit-learn's estimator checks include an array-API check (NumPy namespace) that
# skips itself unless SciPy's array-API mode is on; turned on, it runs and must pass.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# Pretrained weights the tests train go to a fresh directory, never the user's cache.
os.environ["MIDLOGIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="midlogit-test-cache-")

import matplotlib
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")

# `make test` runs two pytest workers on two cores: one BLAS/OpenMP thread each keeps
# KMeans and BLAS from oversubscribing the machine (a 0.03 s fit took 6 s without it).
threadpool_limits(1)
