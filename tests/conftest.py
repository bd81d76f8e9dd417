"""Test-session settings shared by every test module."""

import matplotlib
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")

# `make test` runs two pytest workers on two cores: one BLAS/OpenMP thread each keeps
# KMeans and BLAS from oversubscribing the machine (a 0.03 s fit took 6 s without it).
threadpool_limits(1)
