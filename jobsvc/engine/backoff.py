"""Delay before the next attempt: fixed, linear or exponential, capped, with full jitter."""
from __future__ import annotations

import random
from dataclasses import dataclass

from .. import defaults
from ..errors import ValidationError

KINDS = ("fixed", "linear", "exponential")


@dataclass(frozen=True)
class Backoff:
    kind: str = defaults.BACKOFF
    base: float = defaults.BACKOFF_BASE
    cap: float = defaults.BACKOFF_CAP
    jitter: bool = defaults.BACKOFF_JITTER

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"backoff must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.base < 0 or self.cap < 0:
            raise ValidationError("backoff base and cap must be >= 0")

    def ceiling(self, attempt: int) -> float:
        """Largest delay in seconds after failed attempt number `attempt` (1-based)."""
        n = max(1, attempt)
        if self.kind == "fixed":
            raw = self.base
        elif self.kind == "linear":
            raw = self.base * n
        else:
            raw = self.base * 2.0 ** min(n - 1, 62)
        return min(raw, self.cap)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay in seconds: the ceiling, or with full jitter a uniform draw in [0, ceiling]."""
        top = self.ceiling(attempt)
        if not self.jitter:
            return top
        return (rng or random).uniform(0, top)

    def to_fields(self) -> dict[str, str]:
        return {"js_backoff": self.kind, "js_backoff_base": repr(self.base),
                "js_backoff_cap": repr(self.cap), "js_backoff_jitter": "1" if self.jitter else "0"}

    @classmethod
    def from_fields(cls, fields: dict[str, str], fallback: Backoff | None = None) -> Backoff:
        fb = fallback or cls()
        if "js_backoff" not in fields:
            return fb
        return cls(kind=fields["js_backoff"], base=float(fields.get("js_backoff_base", fb.base)),
                   cap=float(fields.get("js_backoff_cap", fb.cap)),
                   jitter=fields.get("js_backoff_jitter", "1") == "1")
