"""`python -m bench.cluster` runs end to end on small clusters of its own (its figures are for docs/benchmarks.md,
not asserted here): every job is run, on every shard."""
from __future__ import annotations

import pytest

from bench import cluster

pytestmark = pytest.mark.cluster


def test_the_cluster_bench_runs_the_same_work_on_one_and_three_shards(tmp_path):
    one, three = cluster.run(1, 120, tmp_path), cluster.run(3, 120, tmp_path)
    assert (one["jobs"], len(one["cpu_us"]), len(three["cpu_us"])) == (120, 1, 3)
    assert all(c > 0 for c in three["commands"])  # each shard did a share of the work
    assert sum(three["commands"]) == pytest.approx(one["commands"][0], rel=0.25)
    table = cluster.render([one, three])
    assert "vs 1 shard" in table and "1.00" in table
