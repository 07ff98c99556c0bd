"""A Celery app for the tests' workers: late acks and a prefetch multiplier of 1, as the seed
platform runs its long jobs. It consumes the queue named by WARREN_TEST_QUEUE, which the test
declared (with its dead-letter arguments): Celery must not declare it again."""

import os
import time

from celery import Celery
from kombu import Queue

app = Celery("warren-tests")
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1
app.conf.task_queues = [Queue(os.environ["WARREN_TEST_QUEUE"], no_declare=True)]


@app.task(name="job")
def job(seconds: float = 1) -> None:
    time.sleep(seconds)
