"""The leased worker: an RQ BaseWorker subclass (so RQ's tools list it) with its own fast loop.

Per job: one round trip that finishes the previous job (fenced by its lease token) and claims
the next one, atomically over all queues; the job runs in this process, no fork.

On a Redis Cluster (docs/cluster.md 2.3) each queue is its own slot: the round trip claims from the first queue and
the next queues are asked in order for what it lacked, completions go one call per queue, the idle wait blocks on
each queue's wake-up list (SlotWait), and RQ's Worker (which cannot take a cluster client) is left out: the worker
registers under RQ's key names itself, and RQ's worker commands and plain-RQ wake-ups do not apply there."""
from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
from rq.worker import BaseWorker

from jobsvc import Client
from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD, ModuleAllowList
from jobsvc.config import Config
from jobsvc.engine import context, scripts
from jobsvc.engine.cluster import SlotWait, register_worker, unregister_worker
from jobsvc.engine.connection import is_cluster
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Completion, Lease, Leases
from jobsvc.engine.serialization import utcnow_str
from jobsvc.errors import NotFound, WrongState
from jobsvc.redis_check import refuse_cluster, warn_if_evicting, warn_if_no_scheduler

from .batching import ClaimSize, Completions
from .execution import FunctionCache, HandBack, Outcome, Terminated, execute
from .heartbeat import Heartbeat
from .http_handler import HandlerCaller
from .recording import REDIS_DOWN, Recording
from .rq_callbacks import Callbacks
from .rq_commands import CommandListener
from .rq_job import ClaimedJob, CurrentJobSlot
from .rq_wake import RqWake
from .stopping import StopSignals, StopWaiting

log = logging.getLogger("jobsvc.worker")



class LeasedWorker(StopSignals, Recording, BaseWorker):
    def __init__(self, queues: Sequence[str], connection: redis.Redis, config: Config, name: str | None = None):
        name = name or f"{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}"
        worker_ttl = int(config.heartbeat_interval * 3 + 60)
        self.cluster = is_cluster(connection)
        if self.cluster:
            # RQ's Worker needs a redis.Redis (it reads the connection pool): what this class uses of it is set here.
            self.name, self.connection, self.worker_ttl = name, connection, worker_ttl
        else:
            super().__init__(list(queues), name=name, connection=connection, worker_ttl=worker_ttl)
        self.config = config
        self.keys = Keys(config.key_prefix)
        self.leases = Leases(connection, config)
        self.functions = FunctionCache()
        self.allow_list = self.config.module_allow_list()
        self._handlers: HandlerCaller | None = None  # made on the first handler job
        self.queue_list = list(queues)
        self._lease: Lease | None = None
        self._job_started = 0.0
        self._in_job = False
        self._idle = False
        self._stop_at: float | None = None  # monotonic deadline of the shutdown grace period
        self._last_signal = 0.0
        self._terminate_id: str | None = None
        self._terminate_reason = ""
        self._terminate_by_user = False  # terminate / RQ stop-job (on_stopped runs), not a lost lease
        # RQ's view of the running job: rq.get_current_job() and the job given to RQ callbacks (None: HTTP handler).
        self._rq_job: ClaimedJob | None = None
        self._rq_slot: CurrentJobSlot | None = None  # made in work(), in the thread that runs the jobs
        self.callbacks = Callbacks(self.functions, on_timer=self._time_callback)
        # Separate connections for blocking waits: a wait broken by a signal is simply dropped. On a cluster, one per
        # queue (SlotWait: a BLPOP cannot span slots).
        self._wake_keys = [self.leases.layout.key("wake", q, q) for q in queues]
        self._slot_wait = SlotWait(connection, self._wake_keys) if self.cluster else None  # type: ignore[arg-type]
        self._waiter = None if self.cluster else redis.Redis(
            connection_pool=redis.ConnectionPool(**connection.connection_pool.connection_kwargs))
        self._asked = 0  # jobs the last claim call asked for
        self._gone: list[tuple[str, str]] = []  # (id, entry) of jobs deleted at once on a cluster (_forget_gone)
        # Idle waits that also see jobs plain RQ pushes (workers/rq_wake.py); made in work(), None without it.
        self._rq_wake: RqWake | None = None
        self._woken_by_rq = False
        self.processed = 0
        self.failed = 0
        # Batches (workers/batching.py): claimed jobs not started yet, completions not recorded yet, the size of
        # the next claim, and the ids of held jobs whose lease the heartbeat found lost before they started.
        self._held: deque[Lease] = deque()
        self._completions = Completions(config.claim_batch)
        self._claim_size = ClaimSize(config.claim_batch)
        self._lost: set[str] = set()

    def _stop_job(self, job_id: str) -> None:
        """RQ's stop-job command (heartbeat thread): terminate.lua in its 'stop' mode records it as RQ does (status
        stopped, FailedJobRegistry, a failed result) and lists it for this worker's heartbeat, which then stops
        the code."""
        try:
            Client(self.connection, self.config).terminate(job_id, mode="stop")
        except (WrongState, NotFound) as exc:
            log.info("job %s: stop-job command too late (%s)", job_id, exc)

    def _running_job_id(self) -> str | None:
        lease = self._lease
        return lease.job_id if lease is not None else None

    # -- loop ----------------------------------------------------------------------------------------

    def work(self, burst: bool = False, *_args: Any, **_kwargs: Any) -> bool:  # RQ's other options do not apply
        """Run until stopped (or, with burst, until the queues are empty). Returns True if it did work."""
        self._install_signal_handlers()
        # Everything that may take a while comes before the worker registers: RQ's tools (send_shutdown_command)
        # find it once registered, so by then it must be subscribed to its commands (heartbeat.subscribe).
        refuse_cluster(self.connection)  # a plain redis:// URL that leads to a cluster node
        self._rq_wake = None if burst or self.cluster else self._start_rq_wake()
        warn_if_evicting(self.connection, f"worker {self.name}")
        warn_if_no_scheduler(self.connection, self.config.key_prefix, f"worker {self.name}")
        heartbeat = Heartbeat(self.connection, self.config, self.key, self._current, self._grace_over,
                              lambda: self._stop_at, on_terminate=self._terminate,
                              counts=lambda: (self.processed, self.failed), on_lease_lost=self._lease_lost,
                              in_job=lambda: self._in_job, waiting=self._waiting, on_waiting_lost=self._waiting_lost,
                              commands=None if self.cluster else CommandListener(
                                  self.connection, self.name, self._running_job_id, self._stop_job))
        heartbeat.subscribe()
        self.register_birth()
        self._rq_slot = CurrentJobSlot()
        heartbeat.start()
        log.info("worker %s: listening on %s; jobs from the HTTP API may run functions from: %s", self.name,
                 ", ".join(self.queue_list), self.allow_list.describe())
        try:
            self._loop(burst)
        finally:
            heartbeat.stop()
            self._rq_slot.close()
            if self._rq_wake is not None:
                self._rq_wake.reset()
            self.register_death()
            log.info("worker %s: stopped after %d job(s), %d failed", self.name, self.processed, self.failed)
        return self.processed > 0

    def register_birth(self) -> None:
        if not self.cluster:
            super().register_birth()
            return
        register_worker(self.connection, self.key, {
            "hostname": socket.gethostname(), "pid": os.getpid(), "queues": ",".join(self.queue_list),
            "birth": utcnow_str(), "last_heartbeat": utcnow_str(), "state": "starting"}, self.worker_ttl + 60)

    def register_death(self) -> None:
        if not self.cluster:
            super().register_death()
            return
        unregister_worker(self.connection, self.key)

    def _start_rq_wake(self) -> RqWake | None:
        """Says at start how soon a job plain RQ enqueues starts here (it sends no jobsvc wake-up)."""
        later = f"a job plain RQ enqueues starts within {self.config.idle_wait:g}s (the idle wait), not at once"
        if not self.config.rq_wake:
            log.info("worker %s: JOBSVC_RQ_WAKE is off: %s", self.name, later)
            return None
        wake = RqWake(self.connection, self.queue_list, self.keys, self.config.idle_wait)
        why_not = wake.probe()
        if why_not:
            log.warning("worker %s: %s: %s", self.name, why_not, later)
            return None
        log.info("worker %s: idle waits track RQ's queue lists (CLIENT TRACKING): a job plain RQ enqueues starts "
                 "at once", self.name)
        return wake

    def _current(self) -> tuple[Lease | None, float]:
        return self._lease, self._job_started

    def _waiting(self) -> list[Lease]:
        """Leases this worker holds besides the running job's (heartbeat thread: both copies are atomic under the
        GIL): claimed jobs not started yet, and jobs that ended and are not recorded yet."""
        return [*self._held, *(done.lease for done in self._completions.items)]

    def _waiting_lost(self, job_ids: list[str]) -> None:
        """The heartbeat found these waiting leases gone (reaped, or revoked by an operator): never start them."""
        self._lost.update(job_ids)

    def _claim_call(self) -> scripts.Call:
        """The claim this worker sends with its outcomes: over all its queues, in order, in one script on a single
        Redis; of its first queue on a cluster (one slot per call), the next ones asked after it (_claimed)."""
        self._asked = self._claim_size.next()
        queues = self.queue_list[:1] if self.cluster else self.queue_list
        return self.leases.claim_call(queues, self.name, count=self._asked)

    def _claimed(self, reply: list[Any]) -> list[Lease]:
        """The leases of a claim call's reply; on a cluster, what the first queue lacked is asked of the next
        queues, one after the other in the worker's order (so priority order holds across shards)."""
        leases = self.leases.parse_claims(reply)
        for queue in self.queue_list[1:] if self.cluster else ():
            if len(leases) >= self._asked:
                break
            try:
                leases += self.leases.claim_many([queue], self.name, self._asked - len(leases))
            except REDIS_DOWN as exc:  # its shard is away (a failover): the queues on the other shards go on
                log.warning("worker %s: cannot claim from queue %s (%s); going on", self.name, queue, exc)
        return leases

    def _loop(self, burst: bool) -> None:
        self._held.extend(self._claim())
        while True:
            if self.stopping and self._held:
                self._hand_back_held()
            if not self._held:
                if self.stopping or burst:
                    self._send([], claim_next=False)  # whatever completions are still pending
                    return
                self._held.extend(self._claim_when_idle())
                continue
            if self._rq_wake is not None:
                self._rq_wake.disarm()  # busy: no messages (no command unless it was armed)
            lease = self._held.popleft()
            try:
                self._run_and_finish(lease)
            except Exception:  # a bug or a bad reply must not take the worker down
                # Whatever this job's lease was, it expires and the reaper hands the job on.
                log.exception("worker %s: unexpected error around job %s; going on", self.name, lease.job_id)
                self._lease = None
                self._pause(1.0)
                if not self._held and not self.stopping:
                    self._held.extend(self._claim())

    def _claim_when_idle(self) -> list[Lease]:
        """No job was ready (the claim that found none recorded the last completions): wait for one (a jobsvc wake-up,
        a job plain RQ pushed, or the idle wait), then claim. Empty when there is still none, or the worker is
        stopping."""
        if self._rq_wake is not None and self._rq_wake.arm():
            leases = self._claim()  # just started tracking RQ's lists: a job pushed since the last claim sent nothing
            if leases:
                return leases
        self._wait_for_work()
        if self.stopping:
            return []
        leases = self._claim()
        if self._woken_by_rq and self._rq_wake is not None:
            self._rq_wake.claimed(bool(leases))
        return leases

    def _claim(self) -> list[Lease]:
        try:
            return self._claimed(scripts.call(self.connection, *self._claim_call()))
        except REDIS_DOWN as exc:
            log.error("worker %s: cannot claim, Redis unavailable (%s); retrying", self.name, exc)
            if self.cluster:  # only the first queue's shard may be away: the next queues may have work
                leases = self._claimed([])
                if leases:
                    return leases
        except Exception:  # e.g. a script error: log it, wait, try again
            log.exception("worker %s: claim failed; retrying", self.name)
        self._pause(1.0)
        return []

    def _pause(self, seconds: float) -> None:
        """Wait after a Redis error; a stop signal ends the wait."""
        self._idle = True
        try:
            if not self.stopping:
                time.sleep(seconds)
        except StopWaiting:
            pass
        finally:
            self._idle = False

    def _wait_for_work(self) -> None:
        self._idle = True
        self._woken_by_rq = False
        try:
            if self.stopping:
                return
            if self._slot_wait is not None:
                self._slot_wait.wait(self.config.idle_wait)
            elif self._rq_wake is not None and self._rq_wake.armed:
                self._woken_by_rq = self._rq_wake.wait(self._wake_keys, self.config.idle_wait) == "rq"
            elif self._waiter is not None:
                self._waiter.blpop(self._wake_keys, timeout=self.config.idle_wait)
        except StopWaiting:
            if self._slot_wait is not None:
                self._slot_wait.close()
            if self._waiter is not None:
                self._waiter.connection_pool.disconnect()
            if self._rq_wake is not None:
                self._rq_wake.reset()
        except redis.RedisError as exc:  # Redis went away, or a slot moved (failover): the claim after says more
            log.warning("worker %s: idle wait broken (%s); claiming", self.name, exc)
        finally:
            self._idle = False

    def _run_and_finish(self, lease: Lease) -> None:
        """Run one job, then record its outcome: a completion waits for the batch's next call (Completions), a
        failure or a hand-over to an HTTP service goes at once, with the completions and, when this worker holds
        no more jobs, the next claim, in one round trip."""
        if lease.job_id in self._lost:
            self._lost.discard(lease.job_id)
            log.info("job %s: its lease was lost or revoked before it started; not run", lease.job_id)
            self._send([])  # it may have been the batch's last: record what is pending, claim on
            return
        self._lease, self._job_started = lease, time.monotonic()
        outcome = self._run(lease)
        if outcome is None:  # handed back or terminated: record what is pending, and claim on
            self._send([])
            return
        self._claim_size.observe(time.monotonic() - self._job_started)
        if outcome.accepted:
            self._send([(lease, outcome, self.leases.await_callback_call(lease, self.name, outcome.run or {}))])
        elif outcome.ok:
            self._completions.add(Completion(lease, outcome.result, outcome.started, outcome.ended, outcome.run))
            self._lease = None
            self._send([])
        else:
            self._send([(lease, outcome, self.leases.fail_call(
                lease, outcome.exc_type, outcome.message, outcome.traceback, outcome.retryable, self.name,
                outcome.started, outcome.ended, outcome.run, outcome.min_delay))])
        self._lease = None

    def _run(self, lease: Lease) -> Outcome | None:
        """The job's outcome (after its RQ callbacks), or None when it was handed back or terminated."""
        started = time.time()
        context.enter(context.RunningJob(lease.job_id, lease.token, lease.attempt, lease.queue, self.connection,
                                         self.config.key_prefix))
        rq_job = self._rq_job = (None if lease.fields.get("js_handler")
                                 else ClaimedJob(lease.job_id, self.connection, lease.fields, self._job_key(lease)))
        try:
            if lease.fields.get("js_handler"):
                outcome = self._handler_caller().call(lease, self._enter_job, self._leave_job)
            else:
                outcome = execute(lease.fields["data"], lease.timeout, self.functions, self._enter_job,
                                  self._leave_job, self._allow_list_for(lease))
        except HandBack:
            self._handback(lease)
            self._hand_back_held()
            return None
        except Terminated:
            self._lease = None
            log.info("job %s %s", lease.job_id, self._terminate_reason)
            if self._terminate_by_user and rq_job is not None:
                self.callbacks.after_stop(lease.fields, rq_job, self._allow_list_for(lease))
            return None
        finally:
            context.enter(None)
            self._rq_job = None
        ended = time.time()  # before any callback: RQ's execution end, too, leaves the callbacks out
        if rq_job is not None:
            outcome = self.callbacks.after_run(lease.fields, rq_job, outcome, self._allow_list_for(lease))
        outcome.started, outcome.ended = started, ended
        return outcome

    def _send(self, finishes: list[tuple[Lease, Outcome, scripts.Call]], claim_next: bool = True) -> None:
        """One round trip: the completions when due (always with a failure, or when a claim goes too), these
        finishes, and (claim_next) the next claim when this worker holds no more jobs."""
        claiming = claim_next and not self._held and not self.stopping
        flush = bool(finishes) or claiming or self.stopping or not claim_next or self._completions.due()
        batches = self._batches(self._completions.take() if flush else [])
        calls = [self.leases.complete_many_call(self.name, b) for b in batches] + [c for _, _, c in finishes]
        if not calls:
            if claiming:
                self._held.extend(self._claim())
            return
        claim = self._claim_call() if claiming else None  # built once, for the call that sends it
        replies = self._finish(calls, claim)
        for batch in batches:
            reply = replies.pop(0)
            for completion in batch:
                self._record(completion.lease, None, reply if isinstance(reply, Exception) else reply.pop(0))
        for lease, outcome, _ in finishes:
            self._record(lease, outcome, replies.pop(0))
        if self._gone:
            self._forget_gone()

    def _batches(self, done: list[Completion]) -> list[list[Completion]]:
        """The completions as complete.lua calls take them: all in one on a single Redis, one call per queue (slot)
        on a cluster."""
        groups: dict[str, list[Completion]] = {}
        for completion in done:
            groups.setdefault(self.leases.slot(completion.lease), []).append(completion)
        return list(groups.values())

    def _finish(self, calls: list[scripts.Call], claim: scripts.Call | None) -> list[Any]:
        """Send the outcomes (and the next claim); their replies. While Redis is away, retry the outcomes not
        recorded, alone, until their leases would have run out anyway; one still not recorded then gets its error as
        its reply. A retry after a lost reply is rejected as stale: harmless. On a cluster a node may fail while the
        others ran their calls: only the failed calls go again, and a claim that ran is taken at once (its jobs are
        leased to this worker: held, the heartbeat renews them while the retries go on)."""
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        refused: Exception | None = None  # a claim's own error (a bug), raised once the outcomes are done
        give_up = time.monotonic() + self.config.lease_ttl
        delay = 0.1
        while True:
            sent = [calls[i] for i in todo] + ([claim] if claim else [])
            try:
                got = scripts.call_many(self.connection, sent, self.config.wait(), raise_errors=False)
            except REDIS_DOWN as exc:  # the whole round trip (a single Redis)
                got = [exc] * len(sent)
            if claim:
                refused, claim = self._take_claim(got.pop()), None
            for i, reply in zip(todo, got, strict=True):
                replies[i] = reply
            todo = [i for i in todo if isinstance(replies[i], REDIS_DOWN)]
            if not todo or time.monotonic() + delay > give_up or self.stopping:
                break
            log.warning("Redis unavailable (%s); retrying the outcome of %d call(s) in %.1fs", replies[todo[0]],
                        len(todo), delay)
            self._pause(delay)
            delay = min(delay * 2, 5.0)
        if todo:
            log.error("%d outcome call(s) not recorded, Redis unavailable (%s); their leases will expire and those "
                      "jobs will run again", len(todo), replies[todo[0]])
        for reply in [*replies, refused]:
            if isinstance(reply, Exception) and not isinstance(reply, REDIS_DOWN):
                raise reply  # a script's own error: a bug, for _loop to log
        return replies

    def _take_claim(self, reply: Any) -> Exception | None:
        """Hold the jobs a claim sent with the outcomes leased (on a cluster, and the next queues' for what it
        lacked); a claim whose node was away holds nothing (the next round claims again). A script's own error is
        returned, to be raised after the outcomes."""
        if isinstance(reply, Exception) and not isinstance(reply, REDIS_DOWN):
            return reply
        try:
            self._held.extend(self._claimed([] if isinstance(reply, REDIS_DOWN) else reply))
        except REDIS_DOWN as exc:  # the claimed jobs' hashes unread: their leases expire, the reaper hands them on
            log.error("worker %s: claimed jobs not read, Redis unavailable (%s); their leases will expire", self.name,
                      exc)
        return None

    def _job_key(self, lease: Lease) -> str | None:
        """The job hash's name for RQ's Job object when it is not RQ's own (a cluster's, under the queue's tag)."""
        return self.leases.layout.job(lease.queue, lease.job_id) if self.cluster else None

    def _allow_list_for(self, lease: Lease) -> ModuleAllowList | None:
        """The allow-list a job's function must come from: only jobs created through the HTTP API have one."""
        return self.allow_list if lease.fields.get(ORIGIN_FIELD) == ORIGIN_API else None

    def _handler_caller(self) -> HandlerCaller:
        if self._handlers is None:
            self._handlers = HandlerCaller(self.config)
        return self._handlers

    def _enter_job(self) -> None:
        self._slot().enter(self._rq_job)
        self._in_job = True

    def _leave_job(self) -> None:
        self._in_job = False
        self._slot().leave()

    def _slot(self) -> CurrentJobSlot:
        """The slot rq.get_current_job() reads: work() opens it, and jobs run only inside work()."""
        if self._rq_slot is None:
            raise RuntimeError("a job runs only inside work()")
        return self._rq_slot

    def _time_callback(self, seconds: int) -> None:
        """An RQ callback may take `seconds`: the heartbeat's hung-job check (started + job timeout + hung_grace)
        must measure it, not the job that already ended, or a long callback would let the lease lapse."""
        lease = self._lease
        if lease is not None:
            self._job_started = time.monotonic() + seconds - (lease.timeout or 0)
