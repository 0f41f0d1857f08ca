"""lossbench."""

import os as _os

# OpenMP threads that sleep instead of spinning while they wait for work. With the default policy, a
# machine whose cores are shared with other processes (a sweep beside a test run, two developers on one
# box) makes torch's CPU ops wait for descheduled spinning threads: a digits run measured 36 s instead of
# 6 s on 2 busy cores (benchmarks/BASELINE.md). Read by OpenMP when torch loads, so it only takes effect
# when lossbench is imported before torch (train.py, the console scripts); an explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lossbench.resolvers import register as _register_resolvers  # noqa: E402

_register_resolvers()
