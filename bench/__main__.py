"""`python -m bench`: run every benchmark in turn."""

from . import attribution, local_concurrency, orchestration

for bench in (orchestration, local_concurrency, attribution):
    bench.main()
    print()
