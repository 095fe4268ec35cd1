"""What Cloud Tasks calls: the monitors' scheduled checks, schedule windows' edges and the
orphaned-input sweep
(deployed private: only the task invoker's OIDC token gets in).
"""

from __future__ import annotations

from common.http import Ctx, Reply
from common.models.api import (
    MonitorTaskPayload,
    MonitorTaskResult,
    OrphanSweepPayload,
    OrphanSweepResult,
    WindowTaskPayload,
    WindowTaskResult,
)
from functions.paths import task_function


@task_function("/api/tasks/monitor", MonitorTaskPayload, MonitorTaskResult)
def runmonitorcheck(ctx: Ctx) -> Reply:
    """Cloud Tasks: one scheduled monitor check (recording or status)."""
    task = ctx.body(MonitorTaskPayload)
    outcome = ctx.services.monitors.run_check(
        task.kind, task.streamId, task.generation, task.attempt
    )
    return MonitorTaskResult(outcome=outcome)


@task_function("/api/tasks/window", WindowTaskPayload, WindowTaskResult)
def runwindowedge(ctx: Ctx) -> Reply:
    """Cloud Tasks: one edge of a schedule window ("starting soon", or the planned end)."""
    task = ctx.body(WindowTaskPayload)
    outcome = ctx.services.windows.run_edge(task.streamId, task.edge, task.revision)
    return WindowTaskResult(outcome=outcome)


@task_function("/api/tasks/sweep-live-inputs", OrphanSweepPayload, OrphanSweepResult)
def sweeporphanedinputs(ctx: Ctx) -> Reply:
    """Cloud Tasks: delete the live inputs of one stream a failed create left behind."""
    task = ctx.body(OrphanSweepPayload)
    return OrphanSweepResult(deleted=ctx.services.live_inputs.sweep_orphaned_inputs(task.streamId))
