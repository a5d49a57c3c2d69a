"""`python -m bench`: run every benchmark in turn."""

from . import app_start, attribution, batch, local_concurrency, orchestration, votes

for bench in (orchestration, batch, local_concurrency, attribution, votes, app_start):
    bench.main()
    print()
