"""Settings of the worker process."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import CommonSettings


class WorkerSettings(CommonSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_sender: str = "Guichet <no-reply@guichet.local>"
    smtp_starttls: bool = False
    mail_sealing_key: str
    # Program accounts per delegation batch (one SQL statement in the groups service), and
    # batches per activity (each heartbeats its cursor).
    delegation_batch_size: int = Field(default=25_000, ge=1, le=50_000)
    delegation_batches_per_activity: int = Field(default=40, ge=1)
    # Workflow runs kept in memory between tasks (about 80 KiB each): a run evicted from the cache
    # is replayed from its history when it wakes. bench/sla.py holds 10,000 live SLA workflows.
    max_cached_workflows: int = Field(default=5_000, ge=0)
    # Workflow tasks the worker runs at once (each holds a slot while its local activities run:
    # an SLA report holds one for the five seconds its run woke ahead, and its call to support),
    # and local activities at once. 80 warnings a second hold about 400 of each.
    workflow_task_slots: int = Field(default=1000, ge=1)
    local_activity_slots: int = Field(default=1000, ge=1)
    # Workflow-task long polls follow the backlog between 1 and this many. Each poll that gets a
    # task makes the server record the task's start: against a saturated server (the dev
    # server's one SQLite writer) dozens at once only queue, time out and are retried.
    workflow_task_pollers_max: int = Field(default=100, ge=2)
    # The garbage collector's thresholds (`gc.set_threshold`; Python's are 700, 10, 10). A full
    # collection walks every object of every cached run and stops the whole worker while it does:
    # 0.6 s on average and up to 2 s with 10,000 SLA runs cached, 24 of them in bench/sla.py's
    # run, and a warning due during one was recorded that late. Fewer young collections promote
    # fewer objects that were about to die, so the old generation fills, and is walked, less
    # often; it still is, so no cycle of garbage lives for ever.
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 100)
    # How long a task for a cached run waits for this worker before the server gives it to any
    # worker with the whole history (a timeout is a new task and a replay: more work under load).
    sticky_schedule_to_start_seconds: float = Field(default=10.0, gt=0)
