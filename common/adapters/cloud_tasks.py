"""Cloud Tasks: delayed HTTP calls to our task endpoints, de-duplicated by task name.

Production: each task goes to its own function's Cloud Run URL (``target_base_url`` is a
pattern with ``{function}``, e.g. ``https://{function}-<PROJECT_NUMBER>.<REGION>.run.app``)
and carries an OIDC token of the invoker service account whose audience is that URL. The task
functions are deployed with ``--no-allow-unauthenticated``, so Cloud Run's IAM check (the
invoker holds ``roles/run.invoker`` on them) authenticates every call before our code runs,
and nothing secret is stored in a task: rotating a key breaks no queued task.

Locally: the Cloud Tasks emulator mints no OIDC token, so tasks go to the gateway
(``target_base_url`` without ``{function}``) with the shared ``X-Task-Auth`` token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.protobuf import timestamp_pb2

from common.errors import FailedPreconditionError, InternalError, UnavailableError
from common.ports import Clock, ScheduledTask
from common.services.keepsakes import KEEPSAKE_TASK_PATH
from common.services.live_inputs import ORPHAN_SWEEP_TASK_PATH
from common.services.monitors import MONITOR_TASK_PATH
from common.services.schedule_windows import WINDOW_TASK_PATH
from common.signatures import TASK_AUTH_HEADER

FUNCTION_PLACEHOLDER = "{function}"
# The deployed function that serves each task path (infra/functions.json deploys them).
TASK_FUNCTIONS: Mapping[str, str] = {
    MONITOR_TASK_PATH: "runmonitorcheck",
    ORPHAN_SWEEP_TASK_PATH: "sweeporphanedinputs",
    KEEPSAKE_TASK_PATH: "runkeepsakecheck",
    WINDOW_TASK_PATH: "runwindowedge",
}

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from google.cloud import tasks_v2


class CloudTasksQueue:
    """``TaskQueue`` over one Cloud Tasks queue.

    Args:
        client: The Cloud Tasks client (or the emulator's).
        queue_path: ``projects/P/locations/L/queues/Q``.
        target_base_url: Where tasks go: one base URL for every path (local gateway) or a
            pattern with ``{function}`` replaced by the function that serves the task's path.
        clock: For schedule times.
        oidc_service_account: Tasks carry an OIDC token of this account (production).
        auth_token: Tasks carry it as ``X-Task-Auth`` (local emulator only).
        functions: Task path -> function name, for the ``{function}`` pattern.
    """

    def __init__(
        self,
        client: tasks_v2.CloudTasksClient,
        queue_path: str,
        target_base_url: str,
        clock: Clock,
        *,
        oidc_service_account: str | None = None,
        auth_token: str | None = None,
        functions: Mapping[str, str] = TASK_FUNCTIONS,
    ) -> None:
        self._client = client
        self._queue = queue_path
        self._target = target_base_url.rstrip("/")
        self._clock = clock
        self._oidc_service_account = oidc_service_account
        self._auth_token = auth_token
        self._functions = dict(functions)

    def target(self, path: str) -> tuple[str, str]:
        """The URL a task for ``path`` is sent to, and its OIDC audience (the service URL)."""
        if FUNCTION_PLACEHOLDER not in self._target:
            return f"{self._target}{path}", self._target
        function = self._functions.get(path)
        if function is None:
            raise InternalError(f"No function serves the task path {path!r}")
        service = self._target.replace(FUNCTION_PLACEHOLDER, function)
        return f"{service}{path}", service

    def enqueue(self, task: ScheduledTask) -> bool:
        # Imported here: the HTTP functions read TASK_AUTH_HEADER without loading the client.
        from google.cloud import tasks_v2  # noqa: PLC0415

        schedule = timestamp_pb2.Timestamp()
        schedule.FromDatetime(self._clock.now() + timedelta(seconds=task.delay_s))
        url, audience = self.target(task.path)
        headers = {"Content-Type": "application/json"}
        if self._auth_token:
            headers[TASK_AUTH_HEADER] = self._auth_token
        http_request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=url,
            headers=headers,
            body=json.dumps(task.payload).encode(),
        )
        if self._oidc_service_account:
            http_request.oidc_token = tasks_v2.OidcToken(
                service_account_email=self._oidc_service_account, audience=audience
            )
        request = tasks_v2.Task(
            name=f"{self._queue}/tasks/{task.name}",
            schedule_time=schedule,
            http_request=http_request,
        )
        try:
            self._client.create_task(parent=self._queue, task=request, timeout=10)
        except gexc.AlreadyExists:
            return False
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
            raise UnavailableError("The task queue is unavailable", retry_after_s=5) from exc
        except gexc.PermissionDenied as exc:
            message = (
                f"Cannot create tasks in {self._queue}: the function's service account needs "
                "roles/cloudtasks.enqueuer on the project and roles/iam.serviceAccountUser on "
                f"the task invoker {self._oidc_service_account or '(none configured)'}"
            )
            log.error("%s (%s)", message, exc.message)
            raise FailedPreconditionError(message) from exc
        except gexc.NotFound as exc:
            message = (
                f"The task queue {self._queue} does not exist: deploy it (make deploy) or fix "
                "LS_GCP_PROJECT / LS_TASKS_LOCATION / LS_TASKS_QUEUE"
            )
            log.error("%s (%s)", message, exc.message)
            raise FailedPreconditionError(message) from exc
        return True
