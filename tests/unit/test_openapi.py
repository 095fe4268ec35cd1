"""The OpenAPI document is generated from the operations the functions declare beside their
handlers (``common.http.Op``), and the handlers parse and reply with those same models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import flask
import jsonschema
import pytest
from pydantic import BaseModel, ValidationError
from schemathesis.specs.openapi.definitions import OPENAPI_31

import functions.main as entry_points
from common.bootstrap import Services, override
from common.http import ENDPOINTS, SDP, ErrorBody, Op, http_endpoint
from common.openapi import documented_operations, openapi_document, query_parameters
from common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MVP = "/api/livestreamMVPTwo/"


def http_functions() -> dict[str, Any]:
    return {
        name: getattr(entry_points, name)
        for name in entry_points.FUNCTION_MODULES
        if hasattr(getattr(entry_points, name), "operations")
    }


def test_every_http_function_is_declared_with_the_routes_and_methods_it_serves() -> None:
    functions = http_functions()
    # Every function but the Firestore trigger serves HTTP routes it declares.
    assert set(functions) == set(entry_points.FUNCTION_MODULES) - {"onstreamwritten"}
    for name, function in functions.items():
        endpoint = ENDPOINTS[name]
        assert endpoint.routes == function.routes, name
        assert tuple(endpoint.operations) == function.methods, name


def test_the_document_describes_each_served_operation_once_at_its_unified_path() -> None:
    document = openapi_document()
    described = {(m, p) for p, ops in document["paths"].items() for m in ops}
    served = list(documented_operations())
    assert len(served) == len({(m, p) for m, p, _ in served}) == len(described)
    assert described == {(m, p) for m, p, _ in served}
    assert not any(path.startswith(MVP) for _, path in described)
    for name, function in http_functions().items():
        unified = [r for r in function.routes if not r.startswith(MVP)]
        assert unified, f"{name} is served only at MVP Two aliases, which are not documented"
        for method in function.methods:
            assert any((method.lower(), r) in described for r in unified), (name, method)


def test_path_parameters_are_named_in_the_path_and_declared() -> None:
    for path, operations in openapi_document()["paths"].items():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        known = {"streamId", "memorialId", "sessionId", "videoId", "code", "eventId", "templateId"}
        known |= {"outputId"}
        assert in_path <= known, path
        for method, operation in operations.items():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == in_path, (method, path)


def test_every_operation_has_one_success_reply_with_a_schema_and_the_usual_errors() -> None:
    for method, path, op in documented_operations():
        successes = {status: spec for status, spec in op.replies.items() if status < 300}
        assert len(successes) == 1, (method, path)
        (spec,) = successes.values()
        models = spec if isinstance(spec, tuple) else (spec,)
        assert all(
            m in (SDP, "text/calendar") or (isinstance(m, type) and issubclass(m, BaseModel))
            for m in models
        ), (method, path)
        assert op.summary.strip(), (method, path)
        if op.body is not None and op.body is not dict and op.body != SDP:
            assert method in ("post", "put"), (method, path)
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "503"):
                assert status in operation["responses"], (method, path, status)


def test_the_document_is_valid_openapi_3_1_and_its_schemas_valid_json_schema() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(document)))
    assert refs <= set(document["components"]["schemas"])
    json.dumps(document, allow_nan=False)  # what the gateway serves is plain JSON


def _query_models() -> dict[str, type[BaseModel]]:
    return {
        f"{method} {path}": op.query
        for method, path, op in documented_operations()
        if op.query is not None
    }


def _samples(schema: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Query values the parameter's schema accepts, and values it refuses."""
    if "enum" in schema:
        return [str(v) for v in schema["enum"]], ["bogus", schema["enum"][0].upper()]
    if schema.get("type") == "integer":
        low, high = schema["minimum"], schema["maximum"]
        return [str(low), str(high), str((low + high) // 2)], [str(low - 1), str(high + 1), "x"]
    assert schema == {"type": "string"}, schema
    return ["m-1", "any text"], []


@pytest.mark.parametrize("operation", sorted(_query_models()))
def test_the_documented_query_parameters_are_exactly_what_the_handler_parses(
    operation: str,
) -> None:
    model = _query_models()[operation]
    parameters = query_parameters(model)
    # Each parameter by the name the query string uses: the field's alias, else its name.
    fields = {(info.alias or field): field for field, info in model.model_fields.items()}
    assert [p["name"] for p in parameters] == list(fields)
    defaults = model.model_validate({})
    for parameter in parameters:
        name, schema = parameter["name"], parameter["schema"]
        assert not parameter["required"], name
        if "default" in schema:
            assert getattr(defaults, fields[name]) == schema["default"], name
        accepted, refused = _samples(schema)
        for text in accepted:
            parsed = getattr(model.model_validate({name: text}), fields[name])
            assert str(parsed).lower() == text.lower(), (name, text)
        for text in refused:
            with pytest.raises(ValidationError):
                model.model_validate({name: text})


# The adapter holds a handler to its declaration: what it parses, what it replies.


class Payload(BaseModel):
    title: str


class Other(BaseModel):
    title: str


class Made(BaseModel):
    id: str


class Query(BaseModel):
    limit: int = 5


@contextmanager
def served(handler: Any, op: Op) -> Iterator[flask.testing.FlaskClient]:
    """A test client of ``handler`` declared with ``op`` (kept out of ``ENDPOINTS``)."""
    function = http_endpoint(("/t/{thingId}",), {"POST": op})(handler)
    ENDPOINTS.pop(handler.__name__)
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:_>", "t", lambda _: function(flask.request), methods=["POST"])
    services = SimpleNamespace(settings=Settings(), auth=None)
    with override(cast(Services, services)):
        yield app.test_client()


def test_a_handler_parses_with_the_declared_models_and_replies_with_the_declared_status() -> None:
    def made(ctx: Any) -> BaseModel:
        assert ctx.query(Query).limit == 7
        return Made(id=ctx.body(Payload).title + ctx.param("thingId"))

    op = Op("Make", {201: Made}, body=Payload, query=Query)
    with served(made, op) as client:
        reply = client.post("/t/x1?limit=7", json={"title": "a"})
        assert (reply.status_code, reply.get_json()) == (201, {"id": "ax1"})
        refused = client.post("/t/x1?limit=many", json={"title": "a"})
        assert refused.status_code == 400
        assert refused.get_json()["fields"][0]["field"] == "limit"
        assert client.post("/t/x1?limit=7", json={}).status_code == 400  # no title


def test_parsing_with_another_model_than_declared_is_a_500_not_an_undocumented_answer() -> None:
    def other_body(ctx: Any) -> BaseModel:
        return Made(id=ctx.body(Other).title)

    def other_query(ctx: Any) -> BaseModel:
        return Made(id=str(ctx.query(Query).limit))

    def undeclared_reply(ctx: Any) -> BaseModel:
        return Other(title=ctx.body(Payload).title)

    for handler, op in (
        (other_body, Op("Make", {200: Made}, body=Payload)),
        (other_query, Op("Make", {200: Made}, body=Payload)),
        (undeclared_reply, Op("Make", {200: Made}, body=Payload)),
    ):
        with served(handler, op) as client:
            reply = client.post("/t/x1", json={"title": "a"})
            assert reply.status_code == 500, handler.__name__
            assert reply.get_json() == {"error": "Internal error", "code": "internal"}


def test_the_error_body_is_what_errors_render() -> None:
    def refused(ctx: Any) -> BaseModel:
        return Made(id=ctx.body(Payload).title)

    with served(refused, Op("Make", {200: Made}, body=Payload)) as client:
        ErrorBody.model_validate(client.post("/t/x1", json=[]).get_json())


def test_importing_the_functions_builds_no_document() -> None:
    # Cold start: the document (and the module that builds it) is made only when asked for.
    check = "import sys, functions.main\nassert 'common.openapi' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True)
