"""One BLAS thread per process: the services' matrices are small and the cores are shared.

OpenBLAS starts a thread per core and busy-waits them. A service process shares its cores with
Kafka, PostgreSQL and the other services; with every core busy, those spinning threads turned a
201 x 201 solve into 150 ms (1 ms on one thread), and final scoring of a 200-essay batch from
0.1 s into 7 s (`benchmarks/cj`). Concurrency here comes from asyncio and from more instances,
not from threads inside one linear solve.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def limit_blas_threads(threads: int = 1) -> None:
    """Cap the BLAS/OpenMP thread pools of this process (effective at once, for good)."""
    threadpool_limits(limits=threads)
