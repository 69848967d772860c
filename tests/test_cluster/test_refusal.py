"""A redis+cluster:// URL gives the core library, the worker, the scheduler and the admin API a cluster client
(docs/cluster.md); the CLI's operator commands, which do not run on a cluster yet, refuse one at once with a sentence
that says why and what to do, not job by job with CROSSSLOT or MOVED errors later; the worker, the scheduler and the
API, given a plain URL to a cluster node, say to name it redis+cluster://."""
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

NOT_YET = "do not run on Redis Cluster yet"


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


def test_a_cluster_node_behind_a_plain_url_is_refused(node, r):
    port = node.connection_pool.connection_kwargs["port"]
    with pytest.raises(ValidationError, match=f"127.0.0.1:{port}/0 is a Redis Cluster node.*{NOT_YET}"):
        refuse_cluster(node)
    refuse_cluster(r)  # a single Redis passes


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


def test_the_operator_commands_refuse_a_cluster_and_enqueue_runs_there(redis_cluster, capsys):
    from jobsvc_cli.main import main

    url = redis_cluster.url.replace("redis://", "redis+cluster://")
    assert main(["jobs", "--url", url, "list"]) == 2
    assert NOT_YET in capsys.readouterr().err
    assert main(["enqueue", "tests.jobfuncs.add", "1", "2", "--queue", "mail", "--url", url]) == 0
    assert main(["info", "--url", url]) == 2  # its event totals read single-node names
    assert "does not run on a Redis Cluster yet" in capsys.readouterr().err
