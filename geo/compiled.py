"""What the numba-compiled parts of :mod:`geo` share.

numba's default threading layer (workqueue) aborts the whole process when two Python threads
enter parallel code at the same time, and the API serves requests from a thread pool: every
call into a ``parallel=True`` kernel holds :data:`PARALLEL_KERNEL` (the kernels use all cores
anyway, so nothing is lost by taking turns).
"""

from __future__ import annotations

import threading

__all__ = ["PARALLEL_KERNEL"]

PARALLEL_KERNEL = threading.Lock()
