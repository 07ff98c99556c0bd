"""How the process's memory is managed.

The garbage collector's thresholds: a poll at scale allocates hundreds of thousands of
short-lived objects (a row, a flag and a wait per tenant queue), and with Python's default
thresholds (700, 10, 10) every few thousand of them start a collection that walks the whole
heap, topology included. Measured with bench/scale_simulated.py at 100,000 tenant queues: half
of a warm poll's CPU was the collector's, and with these thresholds it is a few percent.
Reference cycles are still collected, only less often.

Memory given back: Python keeps freed memory for reuse (its small-object arenas, and glibc's
malloc its heap), so a console that held a large overview for its viewers would hold that
much for good once they left."""

import ctypes
import gc

THRESHOLDS = (100_000, 50, 50)


def tune_garbage_collector() -> None:
    gc.set_threshold(*THRESHOLDS)


def release_memory() -> None:
    """Collect the garbage, then ask the C library to return its free pages to the system
    (glibc's `malloc_trim`; elsewhere only the collection)."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


# The process's own symbols: glibc's where the C library is glibc.
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)
