"""What Cloud Tasks calls: the monitors' scheduled checks and the orphaned-input sweep
(deployed private: only the task invoker's OIDC token gets in).
"""

from __future__ import annotations

import functions_framework

from common.adapters.cloud_tasks import TASK_AUTH_HEADER
from common.http import Ctx, ErrorBody, Op, Reply, task_endpoint
from common.models.api import (
    MonitorTaskPayload,
    MonitorTaskResult,
    OrphanSweepPayload,
    OrphanSweepResult,
)


@functions_framework.http
@task_endpoint(
    ("/api/tasks/monitor",),
    Op(
        "Cloud Tasks: one monitor check",
        {200: (MonitorTaskResult, ErrorBody)},
        body=MonitorTaskPayload,
        headers=(TASK_AUTH_HEADER,),
    ),
)
def runmonitorcheck(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: one scheduled recording or status check."""
    task = ctx.body(MonitorTaskPayload)
    outcome = ctx.services.monitors.run_check(
        task.kind, task.streamId, task.generation, task.attempt
    )
    return MonitorTaskResult(outcome=outcome)


@functions_framework.http
@task_endpoint(
    ("/api/tasks/sweep-live-inputs",),
    Op(
        "Cloud Tasks: delete orphaned live inputs of one stream",
        {200: (OrphanSweepResult, ErrorBody)},
        body=OrphanSweepPayload,
        headers=(TASK_AUTH_HEADER,),
    ),
)
def sweeporphanedinputs(ctx: Ctx) -> Reply:
    """POST from Cloud Tasks: delete live inputs a failed create may have left behind."""
    task = ctx.body(OrphanSweepPayload)
    return OrphanSweepResult(deleted=ctx.services.live_inputs.sweep_orphaned_inputs(task.streamId))
