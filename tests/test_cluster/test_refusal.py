"""Until jobsvc runs on Redis Cluster (docs/cluster.md), every way of pointing it at one is refused at once with
a sentence that says why and what to do, not job by job with CROSSSLOT or MOVED errors later."""
from __future__ import annotations

import pytest
import redis

from admin_api import create_app
from jobsvc import Config
from jobsvc.engine.connection import connect
from jobsvc.errors import ValidationError
from jobsvc.redis_check import refuse_cluster
from workers.scheduler import Scheduler
from workers.worker import LeasedWorker

pytestmark = pytest.mark.cluster

NOT_YET = "does not run on Redis Cluster yet"


@pytest.mark.parametrize("url", ["redis+cluster://127.0.0.1:7000", "REDISS+CLUSTER://h:7000/0"])
def test_a_cluster_url_is_refused_before_any_connection(url):
    with pytest.raises(ValidationError, match=NOT_YET):
        connect(url)


@pytest.fixture
def node(redis_cluster):
    """A plain client of one cluster node, as a redis:// URL gives."""
    conn = redis.Redis(host="127.0.0.1", port=redis_cluster.masters[0].port)
    yield conn
    conn.close()


def test_a_cluster_node_behind_a_plain_url_is_refused(node, r):
    port = node.connection_pool.connection_kwargs["port"]
    with pytest.raises(ValidationError, match=f"127.0.0.1:{port}/0 is a Redis Cluster node.*{NOT_YET}"):
        refuse_cluster(node)
    refuse_cluster(r)  # a single Redis passes


def test_workers_the_scheduler_and_the_api_refuse_a_cluster_node_before_writing(node, redis_cluster):
    config = Config(redis_url=redis_cluster.url)
    with pytest.raises(ValidationError, match=NOT_YET):
        LeasedWorker(["default"], node, config, name="host.1.w").work(burst=True)
    with pytest.raises(ValidationError, match=NOT_YET):
        Scheduler(node, config).run()
    with pytest.raises(ValidationError, match=NOT_YET):
        create_app(config, connection=node, dev=True)
    client = redis_cluster.client()
    try:
        assert client.dbsize() == 0  # nothing registered, no lock taken, no key written
    finally:
        client.close()
