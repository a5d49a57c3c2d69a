"""`python -m bench`: run every benchmark in turn."""

from . import local_concurrency, orchestration

for bench in (orchestration, local_concurrency):
    bench.main()
    print()
