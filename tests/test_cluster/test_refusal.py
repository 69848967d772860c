"""A redis+cluster:// URL gives the core library, the worker, the scheduler, the admin API and the CLI a cluster
client (docs/cluster.md); any of them given a plain redis:// URL that leads to a cluster node refuses it at once,
saying to name it redis+cluster://, instead of failing job by job with CROSSSLOT or MOVED errors later."""
from __future__ import annotations

import pytest
import redis

from admin_api import create_app
from jobsvc import Client, Config
from jobsvc.engine.connection import connect
from jobsvc.engine.keys import template
from jobsvc.errors import ValidationError
from jobsvc.redis_check import refuse_cluster
from tests.conftest import ALLOWED_MODULES
from workers.scheduler import Scheduler
from workers.worker import LeasedWorker

pytestmark = pytest.mark.cluster

def test_a_cluster_url_gives_the_core_and_the_api_a_cluster_client(redis_cluster):
    url = redis_cluster.url.replace("redis://", "redis+cluster://")
    conn = connect(url)
    try:
        assert isinstance(conn, redis.RedisCluster)
        job_id = Client(url, Config(redis_url=url, allowed_modules=ALLOWED_MODULES)).enqueue(
            "tests.jobfuncs.add", 1, 2, queue="mail").id
        assert conn.hget(template("job", "jobsvc:", "mail") % job_id, "status") == b"queued"
        assert create_app(Config(redis_url=url), connection=conn, dev=True).test_client().get(
            "/api/v1/queues").get_json()["queues"][0]["name"] == "mail"
    finally:
        conn.close()


@pytest.fixture
def node(redis_cluster):
    """A plain client of one cluster node, as a redis:// URL gives."""
    conn = redis.Redis(host="127.0.0.1", port=redis_cluster.masters[0].port)
    yield conn
    conn.close()


def test_a_cluster_node_behind_a_plain_url_is_refused(node, r, redis_cluster):
    port = node.connection_pool.connection_kwargs["port"]
    with pytest.raises(ValidationError, match=f"127.0.0.1:{port}/0 is a Redis Cluster node. Name the cluster"):
        refuse_cluster(node)
    refuse_cluster(r)  # a single Redis passes
    client = redis_cluster.client()
    try:
        refuse_cluster(client)  # and so does a cluster client: what a redis+cluster:// URL gives
    finally:
        client.close()


def test_workers_the_scheduler_and_the_api_refuse_a_cluster_node_before_writing(node, redis_cluster):
    config = Config(redis_url=redis_cluster.url)
    port = node.connection_pool.connection_kwargs["port"]
    # The worker, the scheduler and the API run on a cluster, named as one: they say how.
    advice = rf"is a Redis Cluster node. Name the cluster with a redis\+cluster://127.0.0.1:{port} URL"
    with pytest.raises(ValidationError, match=advice):
        LeasedWorker(["default"], node, config, name="host.1.w").work(burst=True)
    with pytest.raises(ValidationError, match=advice):
        Scheduler(node, config).run()
    with pytest.raises(ValidationError, match=advice):
        create_app(config, connection=node, dev=True)
    client = redis_cluster.client()
    try:
        assert client.dbsize() == 0  # nothing registered, no lock taken, no key written
    finally:
        client.close()


def test_the_cli_runs_on_a_cluster_url_and_refuses_a_plain_url_to_a_node(redis_cluster, capsys):
    from jobsvc_cli.main import main

    url = redis_cluster.url.replace("redis://", "redis+cluster://")
    assert main(["enqueue", "tests.jobfuncs.add", "1", "2", "--queue", "mail", "--url", url]) == 0
    assert main(["jobs", "--url", url, "list"]) == 0
    assert main(["info", "--url", url]) == 0
    capsys.readouterr()
    assert main(["jobs", "--url", redis_cluster.url, "list"]) == 2
    assert "is a Redis Cluster node. Name the cluster with a redis+cluster://" in capsys.readouterr().err
