"""Every deployed function, by name, and the module that defines it.

functions-framework loads this file and asks it for the function its ``--entry-point`` names;
only that function's module is imported then, so each function loads only what it uses (and
``common/bootstrap.py`` builds only the adapters its requests reach). ``firebase.json``
rewrites each URL path to the function of the same name; the module beside it declares the
paths it serves, one ``Op`` per method (summary, body, query and reply models), from which the
OpenAPI document (``common.openapi``) is generated. The document describes the ``/api/...``
paths, not their MVP Two aliases (``functions/paths.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

from common.logging import configure_logging

# Every line a function logs, from its first, is one JSON object Cloud Logging can parse.
configure_logging()

FUNCTION_MODULES = {
    # /api/streams, /api/streams/{id}, /api/memorials/{id}/streams, /api/streams/public,
    # /api/streams/reorder, /api/streams/migrate
    "streams": "functions.streams",
    "stream": "functions.streams",
    "memorialstreams": "functions.streams",
    "publicstreams": "functions.streams",
    "reorderstreams": "functions.streams",
    "migratestreams": "functions.streams",
    # /api/streams/{id}/start, /stop, /extend, /end, /credentials, /whip
    "startstream": "functions.broadcasts",
    "stopstream": "functions.broadcasts",
    "extendstream": "functions.broadcasts",
    "endstream": "functions.broadcasts",
    "streamcredentials": "functions.broadcasts",
    "whipstream": "functions.broadcasts",
    # /api/streams/{id}/status, /embed-info, /api/memorials/{id}/streams/status
    "streamstatus": "functions.viewing",
    "streamembedinfo": "functions.viewing",
    "memorialstreamstatus": "functions.viewing",
    # /api/streams/{id}/playback, /invitations, /invitations/{code}, /access
    "streamplayback": "functions.playback",
    "streaminvitations": "functions.playback",
    "streaminvitation": "functions.playback",
    "streamaccess": "functions.playback",
    # /api/streams/{id}/recordings, /recordings/{videoId}
    "streamrecordings": "functions.recordings",
    "streamrecording": "functions.recordings",
    # /api/streams/{id}/analytics
    "streamanalytics": "functions.analytics",
    # /api/streams/{id}/outputs, /outputs/{outputId} (simulcast)
    "streamoutputs": "functions.outputs",
    "streamoutput": "functions.outputs",
    # /api/streams/{id}/recordings/{videoId}/download, /clip
    "downloadrecording": "functions.keepsakes",
    "cliprecording": "functions.keepsakes",
    # /api/streams/{id}/sync-recording, /sync-status, /get-video-id, /configure-cors,
    # /fix-playback-url, /fix-status
    "syncrecording": "functions.repair_tools",
    "syncstatus": "functions.repair_tools",
    "getvideoid": "functions.repair_tools",
    "configurecors": "functions.repair_tools",
    "fixplaybackurl": "functions.repair_tools",
    "fixstatus": "functions.repair_tools",
    # /api/webhooks/cloudflare/recording, /api/webhooks/cloudflare/live-input
    "cloudflarerecordingwebhook": "functions.webhooks",
    "cloudflareliveinputwebhook": "functions.webhooks",
    # /api/tasks/monitor, /api/tasks/sweep-live-inputs (Cloud Tasks only)
    "runmonitorcheck": "functions.tasks",
    "runwindowedge": "functions.tasks",
    "sweeporphanedinputs": "functions.tasks",
    # /api/tasks/keepsake (Cloud Tasks only)
    "runkeepsakecheck": "functions.keepsakes",
    # /api/memorials/{id}/events, /events/{eventId}, /calendar.ics
    "memorialevents": "functions.memorial_events",
    "memorialevent": "functions.memorial_events",
    "memorialcalendar": "functions.memorial_events",
    # /api/templates, /api/templates/{templateId}
    "eventtemplates": "functions.templates",
    "eventtemplate": "functions.templates",
    # Firestore document.written on streams/{streamId}
    "onstreamwritten": "functions.events",
}


def __getattr__(name: str) -> Any:
    module = FUNCTION_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no function {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *FUNCTION_MODULES})


def load_all() -> None:
    """Import every function's module (the OpenAPI document and the tests read them all)."""
    for module in sorted(set(FUNCTION_MODULES.values())):
        importlib.import_module(module)
