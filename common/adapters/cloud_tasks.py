"""Cloud Tasks over its REST API: delayed HTTP calls to our task endpoints, de-duplicated by
task name. The standard library's HTTP client carries them, so a function that schedules a check
loads neither gRPC nor the client library.

Production: each task goes to its own function's Cloud Run URL (``target_base_url`` is a
pattern with ``{function}``, e.g. ``https://{function}-<PROJECT_NUMBER>.<REGION>.run.app``)
and carries an OIDC token of the invoker service account whose audience is that URL. The task
functions are deployed with ``--no-allow-unauthenticated``, so Cloud Run's IAM check (the
invoker holds ``roles/run.invoker`` on them) authenticates every call before our code runs,
and nothing secret is stored in a task: rotating a key breaks no queued task. Requests to the
API carry the instance's service-account token from the metadata server.

Locally: the Cloud Tasks emulator (``emulators/cloud_tasks_emulator.py`` gives it the REST API)
mints no OIDC token, so tasks go to the gateway (``target_base_url`` without ``{function}``) with
the shared ``X-Task-Auth`` token, and requests carry the emulators' admin token.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from common.adapters.google_errors import GoogleError, google_error
from common.adapters.google_tokens import AccessTokens, authorized_exchange
from common.adapters.keep_alive import KeepAliveConnections
from common.errors import FailedPreconditionError, InternalError, UnavailableError
from common.ports import Clock, ScheduledTask
from common.services.keepsakes import KEEPSAKE_TASK_PATH
from common.services.live_inputs import ORPHAN_SWEEP_TASK_PATH
from common.services.monitors import MONITOR_TASK_PATH
from common.services.schedule_windows import WINDOW_TASK_PATH
from common.signatures import TASK_AUTH_HEADER

PRODUCTION_ORIGIN = "https://cloudtasks.googleapis.com"
ATTEMPT_TIMEOUT_S = 5.0
# Retrying is safe: a task's name is deterministic, so an attempt that landed but whose answer
# was lost makes the next one ALREADY_EXISTS, which is the answer "it is scheduled".
TOTAL_BUDGET_S = 8.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# The reason Google's 403 carries when the project has not enabled the API.
SERVICE_DISABLED = "SERVICE_DISABLED"
FUNCTION_PLACEHOLDER = "{function}"
# The deployed function that serves each task path (infra/functions.json deploys them).
TASK_FUNCTIONS: Mapping[str, str] = {
    MONITOR_TASK_PATH: "runmonitorcheck",
    ORPHAN_SWEEP_TASK_PATH: "sweeporphanedinputs",
    KEEPSAKE_TASK_PATH: "runkeepsakecheck",
    WINDOW_TASK_PATH: "runwindowedge",
}

log = logging.getLogger(__name__)


def queue_path(project: str, location: str, queue: str) -> str:
    return f"projects/{project}/locations/{location}/queues/{queue}"


def format_schedule_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as the REST API takes a ``Timestamp``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CloudTasksQueue:
    """``TaskQueue`` over one Cloud Tasks queue.

    Args:
        origin: The API (``https://cloudtasks.googleapis.com``, or the local emulator's).
        tokens: The ``Authorization`` of each API request.
        queue: ``projects/P/locations/L/queues/Q``.
        target_base_url: Where tasks go: one base URL for every path (local gateway) or a
            pattern with ``{function}`` replaced by the function that serves the task's path.
        clock: For schedule times.
        oidc_service_account: Tasks carry an OIDC token of this account (production).
        auth_token: Tasks carry it as ``X-Task-Auth`` (local emulator only).
        functions: Task path -> function name, for the ``{function}`` pattern.
    """

    def __init__(
        self,
        origin: str,
        tokens: AccessTokens,
        queue: str,
        target_base_url: str,
        clock: Clock,
        *,
        oidc_service_account: str | None = None,
        auth_token: str | None = None,
        functions: Mapping[str, str] = TASK_FUNCTIONS,
        budget_s: float = TOTAL_BUDGET_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connections = KeepAliveConnections(origin, ATTEMPT_TIMEOUT_S)
        self._tokens = tokens
        self._queue = queue
        self._target = target_base_url.rstrip("/")
        self._clock = clock
        self._oidc_service_account = oidc_service_account
        self._auth_token = auth_token
        self._functions = dict(functions)
        self._budget_s = budget_s
        self._sleep = sleep

    def target(self, path: str) -> tuple[str, str]:
        """The URL a task for ``path`` is sent to, and its OIDC audience (the service URL)."""
        if FUNCTION_PLACEHOLDER not in self._target:
            return f"{self._target}{path}", self._target
        function = self._functions.get(path)
        if function is None:
            raise InternalError(f"No function serves the task path {path!r}")
        service = self._target.replace(FUNCTION_PLACEHOLDER, function)
        return f"{service}{path}", service

    def task_body(self, task: ScheduledTask) -> dict[str, Any]:
        """The ``tasks.create`` request body of ``task``."""
        url, audience = self.target(task.path)
        headers = {"Content-Type": "application/json"}
        if self._auth_token:
            headers[TASK_AUTH_HEADER] = self._auth_token
        http_request: dict[str, Any] = {
            "httpMethod": "POST",
            "url": url,
            "headers": headers,
            "body": base64.b64encode(json.dumps(task.payload).encode()).decode(),
        }
        if self._oidc_service_account:
            http_request["oidcToken"] = {
                "serviceAccountEmail": self._oidc_service_account,
                "audience": audience,
            }
        due = self._clock.now() + timedelta(seconds=task.delay_s)
        return {
            "task": {
                "name": f"{self._queue}/tasks/{task.name}",
                "scheduleTime": format_schedule_time(due),
                "httpRequest": http_request,
            }
        }

    def enqueue(self, task: ScheduledTask) -> bool:
        status, error = self._create(json.dumps(self.task_body(task)).encode())
        if status == 200:
            return True
        if status == 409:
            return False
        deployment_fault = self._deployment_fault(status, error)
        if deployment_fault is not None:
            log.error("%s (%s)", deployment_fault, error)
            raise FailedPreconditionError(deployment_fault)
        log.error("Cloud Tasks refused a task of %s: HTTP %s %s", self._queue, status, error)
        raise InternalError(f"Cloud Tasks refused the task (HTTP {status})")

    def _deployment_fault(self, status: int, error: GoogleError | None) -> str | None:
        """What to fix where the API refused the task for how the project is set up."""
        if status == 403 and error is not None and SERVICE_DISABLED in error.reasons:
            return (
                f"The Cloud Tasks API is disabled in the project of {self._queue}: enable "
                "cloudtasks.googleapis.com (make deploy does)"
            )
        if status == 403:
            return (
                f"Cannot create tasks in {self._queue}: the function's service account needs "
                "roles/cloudtasks.enqueuer on the project and roles/iam.serviceAccountUser on "
                f"the task invoker {self._oidc_service_account or '(none configured)'}"
            )
        if status == 404:
            return (
                f"The task queue {self._queue} does not exist: deploy it (make deploy) or fix "
                "LS_GCP_PROJECT / LS_TASKS_LOCATION / LS_TASKS_QUEUE"
            )
        return None

    def _create(self, body: bytes) -> tuple[int, GoogleError | None]:
        """The status of ``tasks.create`` and Google's error, retried with backoff on
        transient failures within the budget, then a 503."""
        deadline = time.monotonic() + self._budget_s
        delay = 0.1
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        path = f"/v2/{self._queue}/tasks"
        while True:
            status, data = authorized_exchange(
                self._connections, self._tokens, ("POST", path, body), headers, deadline
            )
            if status == 200:
                return status, None
            error = google_error(data)
            # 409 is ALREADY_EXISTS (the name was used: it is scheduled) or ABORTED (retry).
            if status and status not in TRANSIENT_STATUSES and error.status != "ABORTED":
                return status, error
            if time.monotonic() + delay >= deadline:
                raise UnavailableError("The task queue is unavailable", retry_after_s=5)
            self._sleep(delay)
            delay = min(delay * 2, 1.0)
