"""Model threads, and the event loop when it runs a model inline, are pinned to the configured
number of BLAS/OpenMP threads, including for libraries loaded after the first call.

Checked in a fresh interpreter: BLAS thread counts are process state, which earlier tests in a
worker process leave pinned, and OpenBLAS ignores a thread's request to lower a count the
main thread raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_SCENARIO = """
import asyncio, json
import numpy as np
from threadpoolctl import threadpool_info
from modelport.inference.executor import ModelExecutor

def counts():
    return sorted({library["num_threads"] for library in threadpool_info()})

async def scenario():
    executor = ModelExecutor(2, 1)
    try:
        seen = [await executor.run(counts), await executor.run(counts, inline=True)]
        import sklearn.ensemble  # brings OpenMP: a new generation of libraries
        executor.generation += 1
        seen += [await executor.run(counts), await executor.run(counts, inline=True)]
        return seen
    finally:
        executor.shutdown()

np.ones(2) @ np.ones(2)  # BLAS loaded
before = counts()
print(json.dumps({"before": before, "seen": asyncio.run(scenario())}))
"""


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def test_model_calls_see_the_pinned_thread_count_inline_and_in_threads() -> None:
    # the libraries' own defaults (one thread per core), whatever this process was given
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", _SCENARIO], capture_output=True, text=True, check=True, env=env
    )
    found = json.loads(done.stdout)
    assert max(found["before"]) > 1  # the pinning is what makes it 1
    assert found["seen"] == [[1]] * 4
