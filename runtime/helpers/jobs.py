"""The job scheduler: one per runtime, shared by every script, driven by the runtime clock.

Kubeshark semantics (reference §8): 6-field cron with seconds first, UTC; tags are global (scheduling
an existing tag replaces that job, whichever script owns it); `limit > 0` caps the number of runs;
runs never overlap (the pipeline runs one job at a time). When the clock jumps past several fire
times at once (an idle gap in a capture, a stopped process), the job runs once and continues from
the first fire time after the clock — missed runs are not replayed one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.helpers.cron import CronError, check_cron

if TYPE_CHECKING:  # croniter is imported when the first job is scheduled (start-up)
    from croniter import croniter

__all__ = ["NS", "CronError", "Job", "Scheduler"]

NS = 1_000_000_000

def _next_after(it: croniter, now_ns: int) -> int:
    nxt = it.get_next(float, start_time=now_ns / NS)
    return round(nxt * NS)


@dataclass(eq=False)
class Job:
    tag: str
    cron: str
    limit: int
    owner: Any
    next_ns: int
    runs: int = 0
    iterator: croniter | None = field(default=None, repr=False)

    def info(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "cron": self.cron,
            "limit": self.limit,
            "runs": self.runs,
            "nextRun": self.next_ns,
        }


class Scheduler:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.running = True
        self.version = 0

    def _changed(self) -> None:
        self.version += 1

    def schedule(self, owner: Any, tag: str, cron: str, limit: int, now_ns: int) -> tuple[Job, Job | None]:
        """Add (or replace) job `tag`; returns the job and the job it replaced, if any."""
        from croniter import croniter

        check_cron(cron)
        try:
            it = croniter(cron, now_ns / NS, second_at_beginning=True)
            first = _next_after(it, now_ns)
        except (ValueError, KeyError, TypeError) as exc:
            raise CronError(f"invalid cron {cron!r}: {exc}") from exc
        old = self.jobs.pop(tag, None)
        job = Job(tag=tag, cron=cron, limit=max(0, int(limit)), owner=owner, next_ns=first, iterator=it)
        self.jobs[tag] = job
        self._changed()
        return job, old

    def get(self, tag: str) -> Job | None:
        return self.jobs.get(tag)

    def remove(self, tag: str) -> Job | None:
        job = self.jobs.pop(tag, None)
        if job is not None:
            self._changed()
        return job

    def remove_all(self) -> list[Job]:
        removed = list(self.jobs.values())
        self.jobs.clear()
        self._changed()
        return removed

    def remove_owner(self, owner: Any) -> list[Job]:
        removed = [j for j in self.jobs.values() if j.owner is owner]
        for job in removed:
            del self.jobs[job.tag]
        if removed:
            self._changed()
        return removed

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self._changed()

    def tags(self) -> list[str]:
        return list(self.jobs)

    def next_due_ns(self) -> int | None:
        if not self.running or not self.jobs:
            return None
        return min(j.next_ns for j in self.jobs.values())

    def due(self, now_ns: int) -> list[Job]:
        """Jobs whose fire time has come, earliest first; each is moved to its next fire time."""
        if not self.running:
            return []
        ready = sorted(
            (j for j in self.jobs.values() if j.next_ns <= now_ns), key=lambda j: (j.next_ns, j.tag)
        )
        for job in ready:
            assert job.iterator is not None
            job.next_ns = _next_after(job.iterator, now_ns)
        return ready

    def ran(self, job: Job) -> None:
        """Count a finished run; a job that reached its limit is removed."""
        job.runs += 1
        if job.limit and job.runs >= job.limit and self.jobs.get(job.tag) is job:
            self.remove(job.tag)
