"""`--concurrency N`: N worker processes, each restarted if it dies, stopped together."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jobsvc.supervisor")

# Seconds between restarts of the same slot: a worker that dies at once cannot spin the CPU.
RESTART_DELAY = 0.5


class Supervisor:
    def __init__(self, target: Callable[[], None], concurrency: int):
        self.target = target
        self.concurrency = concurrency
        self.ctx = multiprocessing.get_context("fork")
        self.children: dict[int, Any] = {}
        self.stopping = False
        self._last_start: dict[int, float] = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.is_alive():
                os.kill(proc.pid, signum)

    def _start(self, slot: int) -> None:
        wait = self._last_start.get(slot, 0) + RESTART_DELAY - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        proc = self.ctx.Process(target=self.target, name=f"jobsvc-worker-{slot}", daemon=False)
        proc.start()
        self.children[slot] = proc
        self._last_start[slot] = time.monotonic()

    def run_once(self) -> None:
        """Restart every child that died (killed, or exited with an error) while we are not stopping.
        A child that exits 0 stopped on purpose (burst mode found the queues empty)."""
        for slot, proc in list(self.children.items()):
            if not proc.is_alive() and not self.stopping and proc.exitcode != 0:
                log.warning("worker process %s (pid %s) exited with %s: restarting", slot, proc.pid,
                            proc.exitcode)
                self._start(slot)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.concurrency):
            self._start(slot)
        while not self.stopping and any(p.is_alive() or p.exitcode != 0 for p in self.children.values()):
            self.run_once()
            time.sleep(0.1)
        for proc in self.children.values():
            proc.join()
        return 0
