"""How the process's garbage collector runs: a poll at scale allocates hundreds of thousands of
short-lived objects (a row, a flag and a wait per tenant queue), and with Python's default
thresholds (700, 10, 10) every few thousand of them start a collection that walks the whole
heap, topology included. Measured with bench/scale_simulated.py at 100,000 tenant queues: half
of a warm poll's CPU was the collector's, and with these thresholds it is a few percent.
Reference cycles are still collected, only less often."""

import gc

THRESHOLDS = (100_000, 50, 50)


def tune_garbage_collector() -> None:
    gc.set_threshold(*THRESHOLDS)
