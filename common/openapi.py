"""The OpenAPI 3.1 description of every HTTP endpoint, generated from the declarations.

Each function named in ``functions/main.py`` declares its operations (``common.http.Op``: summary,
body, query and reply models) beside its handler, which parses with those same models; this
module turns the declarations (``common.http.ENDPOINTS``) into the document, so the document
cannot say one thing while the code does another. Paths are the unified ``/api/...`` ones;
every ``/api/streams/...`` path is also served under ``/api/livestreamMVPTwo/streams/...``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common.http import ENDPOINTS, SDP, ErrorBody, Op, ReplySpec
from common.models.api import IDEMPOTENCY_HEADER

MVP = "/api/livestreamMVPTwo/"
FUNCTIONS_MODULE = "functions.main"
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 429, 503)
PATH_PARAMETERS = (
    "streamId",
    "memorialId",
    "sessionId",
    "videoId",
    "code",
    "eventId",
    "templateId",
    "outputId",
)
PATH_PARAMETER = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    IDEMPOTENCY_HEADER: {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x20-\\x7e]{1,255}$",
    },
}
HEADER_DESCRIPTIONS = {
    IDEMPOTENCY_HEADER: (
        "Makes the create safe to retry (kept 24 h per user): the same key with the same body"
        " returns the stream the first request created (200), never a second one; with a"
        " different body 422; while the first request still runs 409 with Retry-After. A"
        " failed create does not use the key up. More than the allowed creations per user"
        " and window: 429 with Retry-After."
    ),
}


def documented_operations() -> Iterator[tuple[str, str, Op]]:
    """``(method, path, op)`` for every operation the document describes: each declared
    operation at each of its function's routes, except the MVP Two aliases (and, for an
    operation that names its ``route``, at that route only)."""
    importlib.import_module(FUNCTIONS_MODULE).load_all()  # their decorators fill ENDPOINTS
    for endpoint in ENDPOINTS.values():
        for route in endpoint.routes:
            if route.startswith(MVP):
                continue
            for method, op in endpoint.operations.items():
                if op.route in (None, route):
                    yield method.lower(), route, op


def _is_model(item: Any) -> bool:
    return isinstance(item, type) and issubclass(item, BaseModel)


def _models(operations: list[tuple[str, str, Op]]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorBody]
    for _, _, op in operations:
        for item in (op.body, *op.replies.values()):
            found += [model for model in _members(item) if _is_model(model)]
    return list(dict.fromkeys(found))


def _members(item: ReplySpec | type[dict[str, Any]]) -> tuple[Any, ...]:
    return item if isinstance(item, tuple) else (item,)


def _schema_of(item: Any) -> dict[str, Any]:
    if isinstance(item, tuple):
        return {"anyOf": [_schema_of(model) for model in item]}
    if item is dict:
        return {"type": "object"}
    return {"$ref": f"#/components/schemas/{item.__name__}"}


def _content(item: Any) -> dict[str, Any]:
    if item == SDP:
        # Every SDP session description begins with its version line (RFC 8866 §5).
        return {SDP: {"schema": {"type": "string", "pattern": "^v=0\r?\n"}}}
    if isinstance(item, str):  # another media type: text
        return {item: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": _schema_of(item)}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters a query model reads: one per field, its schema as the model
    validates it (optional fields without their ``null``, nested enums inlined, no titles)."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _parameter_schema(field, definitions),
        }
        for name, field in schema["properties"].items()
    ]


def _parameter_schema(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is not None:
        inlined = definitions[ref.rsplit("/", 1)[-1]]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {k: v for k, v in inlined.items() if k != "description"} | rest
    choices = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if "anyOf" in schema and len(choices) == 1:  # optional: absent, never null, in a query
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = _parameter_schema(choices[0], definitions) | rest
    return {
        key: value
        for key, value in schema.items()
        if key != "title" and not (key == "default" and value is None)
    }


def _operation(path: str, op: Op) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETER}
        for name in PATH_PARAMETERS
        if f"{{{name}}}" in path
    ]
    if op.query is not None:
        parameters += query_parameters(op.query)
    parameters += [
        {
            "name": h,
            "in": "header",
            "required": False,
            "schema": HEADER_SCHEMAS.get(h, {"type": "string"}),
        }
        | ({"description": HEADER_DESCRIPTIONS[h]} if h in HEADER_DESCRIPTIONS else {})
        for h in op.headers
    ]
    responses: dict[str, Any] = {}
    for status, item in op.replies.items():
        responses[str(status)] = (
            {"description": "OK"}
            if item is None
            else {"description": "OK", "content": _content(item)}
        )
    for status in (*ERROR_STATUSES, *op.errors):
        responses[str(status)] = {"description": "Error", "content": _content(ErrorBody)}
    document: dict[str, Any] = {
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": []}, {"session": []}, {}],
    }
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": _content(op.body)}
    return document


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built on each call, never at import)."""
    operations = list(documented_operations())
    _, definitions = models_json_schema(
        [(model, "serialization") for model in _models(operations)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in operations:
        paths.setdefault(path, {})[method] = _operation(path, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Memorial livestream API", "version": "1.0.0", "description": __doc__},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__session"},
            },
        },
    }
