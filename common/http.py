"""The endpoint adapter: route → authenticate → parse → call → render, and error mapping.

Each HTTP function declares its operations here, one ``Op`` per method next to its handler:
summary, body, query and reply models. The handler parses with them (``ctx.body``,
``ctx.query``), the reply is rendered with the status the declaration gives its model, and
``common.openapi`` generates the OpenAPI document from the same declarations (``ENDPOINTS``).

This is the only place that catches arbitrary exceptions: everything unexpected becomes a
generic 500 with the stack trace in the log, never in the body.
"""

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, overload

import flask
from pydantic import BaseModel, BeforeValidator, ValidationError, WithJsonSchema

from common import safe_json
from common.bootstrap import Services, get_services
from common.errors import (
    AppError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from common.models.api import is_document_id
from common.models.domain import User
from common.ports import RequestCredentials
from common.request_scope import request_scope
from common.signatures import TASK_AUTH_HEADER, verify_shared_secret

log = logging.getLogger(__name__)

Reply = BaseModel | Sequence[BaseModel] | flask.Response
Handler = Callable[["Ctx"], Reply]
ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024
SESSION_COOKIES = ("session", "__session")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_STORE = "no-store"
_PARAM = re.compile(r"\{(\w+)\}")
SDP = "application/sdp"

# What an operation's request body is: a model (JSON, parsed with ``ctx.body``), ``dict`` (any
# JSON object the handler reads raw, e.g. to check its signature) or a media type (raw text).
BodySpec = type[BaseModel] | type[dict[str, Any]] | str | None
# What a reply is: a model, one of several models, a media type, or nothing (e.g. a 304).
ReplySpec = type[BaseModel] | tuple[type[BaseModel], ...] | str | None


class ErrorBody(BaseModel):
    """Every error: a message for people, a code for programs, sometimes details."""

    error: str
    code: str


# ``Op.preloads`` of the operations that call Cloudflare once their reads are done.
REACHES_CLOUDFLARE = ("provider",)


@dataclass(frozen=True)
class Op:
    """One operation (a method of an endpoint): the handler parses with its models, its replies
    are rendered with the status declared for their model, and the OpenAPI document says the
    same (``common.openapi``).

    ``replies`` maps each success status to its model (a tuple: any of them); ``headers`` are
    the request headers it reads; ``errors`` the error statuses beyond the usual ones;
    ``route`` the one route the operation is documented at, where not at all of them;
    ``writes``: a GET that may change what is stored (the frontend sends some repairs as GET),
    refused across sites with the session cookie as a POST is; ``preloads``: parts the
    request builds after its first round trips (the Cloudflare client after the reads),
    loaded beside them (``Services.preload``).
    """

    summary: str
    replies: Mapping[int, ReplySpec]
    body: BodySpec = None
    query: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    route: str | None = None
    writes: bool = False
    preloads: tuple[str, ...] = ()

    def status_of(self, reply: BaseModel) -> int | None:
        """The success status declared for a reply of this model, if it is declared."""
        for status, spec in self.replies.items():
            models = spec if isinstance(spec, tuple) else (spec,)
            if 200 <= status < 300 and any(
                isinstance(m, type) and isinstance(reply, m) for m in models
            ):
                return status
        return None


@dataclass(frozen=True)
class Endpoint:
    """A deployed HTTP function as declared: its routes and its operations by method."""

    name: str
    routes: tuple[str, ...]
    operations: Mapping[str, Op]


# Every endpoint declared so far, by function name (a module loaded again replaces its own).
ENDPOINTS: dict[str, Endpoint] = {}


def _register(name: str, routes: tuple[str, ...], operations: Mapping[str, Op]) -> None:
    for method, op in operations.items():
        if op.route is not None and op.route not in routes:
            raise ValueError(f"{name}: {method} is documented at {op.route}, not one of {routes}")
    ENDPOINTS[name] = Endpoint(name, routes, operations)


def _true_or_false(value: object) -> object:
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("must be 'true' or 'false'")


# A query flag: exactly ``true`` or ``false`` (absent or empty: ``None``).
QueryFlag = Annotated[
    bool | None,
    BeforeValidator(_true_or_false),
    WithJsonSchema({"type": "string", "enum": ["true", "false"]}),
]


@dataclass
class Route:
    """A path pattern such as ``/api/streams/{stream_id}/start``."""

    pattern: str
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = _PARAM.split(self.pattern)
        regex = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
            for index, part in enumerate(parts)
        )
        self._regex = re.compile(f"^{regex}/?\\Z")

    def match(self, path: str) -> dict[str, str] | None:
        found = self._regex.match(path)
        return found.groupdict() if found else None


class Ctx:
    """One request as an endpoint sees it."""

    def __init__(
        self,
        request: flask.Request,
        params: dict[str, str],
        services: Services,
        operation: Op | None = None,
    ):
        self.request = request
        self.params = params
        self.services = services
        self.method = request.method
        self.operation = operation
        self._user: User | None = None
        self._authenticated = False

    @property
    def user(self) -> User | None:
        """The caller, authenticated on first access (``None`` when anonymous)."""
        if not self._authenticated:
            credentials = request_credentials(self.request)
            if credentials.session_cookie and not credentials.bearer_token:
                refusal = cookie_write_refusal(
                    self.request,
                    self.services.settings.allowed_origins,
                    writes=self.operation is not None and self.operation.writes,
                )
                if refusal:
                    raise PermissionDeniedError(refusal, details={"reason": "cross-site"})
            if credentials.session_cookie or credentials.bearer_token:
                self._user = self.services.auth.authenticate(credentials)
            # else anonymous: the authenticator (Firebase Admin) is neither built nor asked,
            # so an instance that only serves anonymous polls never loads it.
            self._authenticated = True
        return self._user

    def param(self, name: str) -> str:
        """A path parameter; ids that cannot name a document are simply not found."""
        value = self.params[name]
        if not is_document_id(value):
            raise NotFoundError(f"No such {name.removesuffix('Id').removesuffix('_id')}")
        return value

    def require_param(self, name: str) -> str:
        """A path parameter that only some of the endpoint's routes carry."""
        if name not in self.params:
            raise InvalidArgumentError(f"This URL needs a {name}")
        return self.param(name)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def raw_body(self) -> bytes:
        """The exact bytes received (signatures are computed over them)."""
        raw = self.request.get_data(cache=True)
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidArgumentError(
                "Request body too large", details={"maxBytes": MAX_BODY_BYTES}
            )
        return raw

    @property
    def path(self) -> str:
        return self.request.path

    @overload
    def body(self) -> BaseModel: ...
    @overload
    def body(self, model: type[ModelT]) -> ModelT: ...
    def body(self, model: type[BaseModel] | None = None) -> BaseModel:
        """The JSON body validated as the operation's declared body model (``model``, when
        given, must be that model: it only tells the type checker); any problem is a 400 with
        the field errors.

        A body must say ``Content-Type: application/json``: what an HTML form can send
        (urlencoded, multipart, text/plain) is refused, so no cross-site form can forge one.
        No body at all reads as ``{}``.
        """
        model = self._declared("body", model)
        raw = self.raw_body
        if not raw.strip():
            payload: Any = {}
        elif self.request.mimetype != "application/json":
            raise InvalidArgumentError(
                "Content-Type must be application/json",
                details={"expected": "application/json"},
            )
        else:
            payload = _parse_json(raw)
        if not isinstance(payload, dict):
            raise InvalidArgumentError("Request body must be a JSON object")
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise invalid_body(exc) from exc

    @overload
    def query(self) -> BaseModel: ...
    @overload
    def query(self, model: type[ModelT]) -> ModelT: ...
    def query(self, model: type[BaseModel] | None = None) -> BaseModel:
        """The query string validated as the operation's declared query model (``model`` as
        for ``body``). An empty parameter counts as absent; a repeated one by its first value;
        unknown ones are ignored. Any problem is a 400 naming the parameters."""
        model = self._declared("query", model)
        values = {name: value for name, value in self.request.args.items() if value != ""}
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise invalid_input(exc, "query parameter") from exc

    def _declared(self, part: str, model: type[BaseModel] | None) -> type[BaseModel]:
        """The model the operation declares for ``part``: a handler cannot parse with another
        one than the document describes (a programming error, so a 500)."""
        if self.operation is None:  # a bare Ctx, as unit tests make one
            if model is None:
                raise TypeError(f"No operation declares this request's {part}")
            return model
        declared = getattr(self.operation, part)
        if not (isinstance(declared, type) and issubclass(declared, BaseModel)):
            raise TypeError(f"{self.method} {self.path} declares no {part} model")
        if model is not None and model is not declared:
            raise TypeError(
                f"{self.method} {self.path} parses its {part} as {model.__name__}, "
                f"but declares {declared.__name__}"
            )
        return declared


def _parse_json(raw: bytes) -> Any:
    try:
        return safe_json.loads(raw)
    except safe_json.JsonTooDeepError as exc:
        raise InvalidArgumentError(
            f"Request body nests too deeply (at most {exc.max_depth} levels)"
        ) from exc
    except ValueError as exc:  # not UTF-8, not JSON
        raise InvalidArgumentError("Request body is not valid JSON") from exc


def request_credentials(request: flask.Request) -> RequestCredentials:
    """The session cookie and bearer token a request carries, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    cookie = next((request.cookies[n] for n in SESSION_COOKIES if request.cookies.get(n)), None)
    return RequestCredentials(session_cookie=cookie, bearer_token=bearer)


def invalid_body(exc: ValidationError) -> InvalidArgumentError:
    """A 400 naming each bad field, without echoing the submitted values."""
    return invalid_input(exc, "request body")


def invalid_input(exc: ValidationError, what: str) -> InvalidArgumentError:
    """A 400 naming each bad field (of the body or the query), without echoing the values."""
    problems = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "type": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]
    first = problems[0]
    summary = (
        f"{first['field']}: {first['message']}" if first["field"] != "body" else first["message"]
    )
    return InvalidArgumentError(f"Invalid {what} ({summary})", details={"fields": problems})


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    """A JSON response with the given status."""
    return flask.Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def render(reply: Reply, operation: Op | None = None) -> flask.Response:
    """Serialise a model (or list of models) to JSON, datetimes as ISO-8601; a model with the
    status the operation declares for it, and a model it does not declare is a programming
    error (a 500), never an answer the document does not describe. (A list is the bare-array
    form of the MVP Two aliases, which the document does not describe.)"""
    if isinstance(reply, flask.Response):
        return reply
    if isinstance(reply, BaseModel):
        status = 200 if operation is None else operation.status_of(reply)
        if status is None:
            raise TypeError(f"{type(reply).__name__} is not a reply this operation declares")
        return json_response(reply.model_dump(mode="json"), status)
    return json_response([item.model_dump(mode="json") for item in reply])


def error_response(error: AppError) -> flask.Response:
    """The JSON error body ``{error, code, ...details}`` with its status."""
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    body = {"error": error.message, "code": str(error.code), **error.details}
    return json_response(body, error.http_status, headers)


_ORIGIN = re.compile(r"(https?)://((?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(\d{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(text: str, *, wildcard: bool = False) -> Origin | None:
    """``(scheme, host, port)`` of an origin ``scheme://host[:port]`` (http/https only, default
    port filled in), or ``None`` for anything else: ``null``, paths, user info, odd hosts.
    With ``wildcard`` the host may start with ``*.`` (allowed-origin patterns)."""
    found = _ORIGIN.fullmatch(text.strip().lower())
    if found is None:
        return None
    scheme, host, port = found.groups()
    if host.startswith("*.") and not wildcard:
        return None
    return scheme, host, int(port) if port else _DEFAULT_PORTS[scheme]


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    """Whether a browser Origin is one of ``patterns``: same scheme, host and port
    (``https://*.example.com`` covers subdomains, not ``example.com``; a bare host is https)."""
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    scheme, host, port = parsed
    for pattern in patterns:
        allowed = parse_origin(pattern if "://" in pattern else f"https://{pattern}", wildcard=True)
        if allowed is None or (allowed[0], allowed[2]) != (scheme, port):
            continue
        if host == allowed[1] or (allowed[1].startswith("*.") and host.endswith(allowed[1][1:])):
            return True
    return False


def csrf_refusal(
    method: str,
    *,
    origin: str | None,
    fetch_site: str | None,
    allowed: Iterable[str],
    own_origin: str | None = None,
    writes: bool = False,
) -> str | None:
    """Why a request authenticated by the session cookie may not do ``method``, or ``None``.

    Reads are always fine (a safe method, unless it ``writes``). Writes are fine when the
    browser says they come from our own origin (``Sec-Fetch-Site: same-origin``, or
    ``none``: the user's own action), or when
    ``Origin`` is an allowed origin or the request's own. A foreign ``Origin``, or a
    cross-site/same-site fetch without an acceptable one, is refused. Without either header
    the caller is not a browser page (the SvelteKit server forwarding calls, curl): fine.
    """
    if method.upper() in SAFE_METHODS and not writes:
        return None
    site = (fetch_site or "").strip().lower()
    if site in ("same-origin", "none"):
        return None
    if origin is not None:
        parsed = parse_origin(origin)
        if origin_allowed(origin, allowed) or (
            parsed is not None and own_origin is not None and parsed == parse_origin(own_origin)
        ):
            return None
        return (
            "Refused: a page on another site may not act with this session cookie "
            "(its Origin is not an allowed origin)"
        )
    if site in ("cross-site", "same-site"):
        return "Refused: a cross-site request may not act with this session cookie"
    return None


def cookie_write_refusal(
    request: flask.Request, allowed: Iterable[str], *, writes: bool = False
) -> str | None:
    """``csrf_refusal`` for a request that carries the session cookie (and no bearer token)."""
    return csrf_refusal(
        request.method,
        origin=request.headers.get("Origin"),
        fetch_site=request.headers.get("Sec-Fetch-Site"),
        allowed=allowed,
        own_origin=_public_origin(request),
        writes=writes,
    )


def _public_origin(request: flask.Request) -> str:
    """The origin the browser used: behind Hosting (or any proxy) the function's own Host is
    not the site's, and the proxy names the site in ``X-Forwarded-Host``/``-Proto``. A page on
    another site cannot set these headers on a cross-site request (they are not CORS-safe)."""
    host = request.headers.get("X-Forwarded-Host") or request.host
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}"


def with_cors(
    response: flask.Response, request: flask.Request, methods: Sequence[str]
) -> flask.Response:
    """CORS headers for an allowed Origin (credentials included; Location readable)."""
    origin = request.headers.get("Origin")
    if origin and origin_allowed(origin, get_services().settings.allowed_origins):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "Location, ETag, Link"
        add_vary(response, "Origin")
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = ", ".join((*methods, "OPTIONS"))
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


PUBLIC_CACHE_CONTROL = "public, max-age=5, s-maxage=10, stale-while-revalidate=30"
# What a caller-dependent answer to a credentialed request says: no shared cache (Hosting's CDN,
# the local nginx) and no browser cache may keep it, so nobody else is ever served it.
PRIVATE_CACHE_CONTROL = "private, no-store"
# An anonymous answer of an endpoint whose answers depend on the caller names the request
# header that would change it. The cookie is left out on purpose: Hosting forwards only
# ``__session`` and makes it part of its CDN's cache key, while ``Vary: Cookie`` would key on
# every cookie a browser carries (analytics cookies too) and miss for each visitor.
ANONYMOUS_VARY = "Authorization"
# How an endpoint's answers may be cached by shared caches (``http_endpoint(cache=...)``):
# "public": the answer never depends on the caller; "anonymous": it does (managers see
# more), so only answers to requests without credentials are shared.
CacheScope = Literal["public", "anonymous"]


def with_validators(response: flask.Response, request: flask.Request) -> flask.Response:
    """Make an anonymous, same-for-everyone GET cacheable: ETag, Cache-Control, 304."""
    if request.method != "GET" or response.status_code != 200:
        return response
    etag = '"' + hashlib.sha256(response.get_data()).hexdigest()[:32] + '"'
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = PUBLIC_CACHE_CONTROL
    presented = {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}
    if etag in presented or f"W/{etag}" in presented:
        not_modified = flask.Response(status=304)
        not_modified.headers["ETag"] = etag
        not_modified.headers["Cache-Control"] = PUBLIC_CACHE_CONTROL
        return not_modified
    return response


def carries_credentials(request: flask.Request) -> bool:
    """Whether a request says who is calling: any ``Authorization`` header or a session cookie
    (the same test the local CDN makes to pass a request by its cache)."""
    return "Authorization" in request.headers or any(
        request.cookies.get(name) for name in SESSION_COOKIES
    )


def add_vary(response: flask.Response, *names: str) -> None:
    """Add request header names to ``Vary``, keeping those already there."""
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    known = {v.lower() for v in present}
    response.headers["Vary"] = ", ".join([*present, *(n for n in names if n.lower() not in known)])


def with_cache_scope(
    response: flask.Response, request: flask.Request, scope: CacheScope
) -> flask.Response:
    """Cache headers for ``scope``. "anonymous": a credentialed request's answer is
    ``private, no-store`` (an error keeps its ``no-store``); an anonymous one is shared like a
    "public" one (ETag, ``PUBLIC_CACHE_CONTROL``, 304), varying on ``Authorization``."""
    if scope == "public":
        return with_validators(response, request)
    if carries_credentials(request):
        if response.status_code < 400:
            response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
        add_vary(response, ANONYMOUS_VARY)
        return response
    response = with_validators(response, request)
    add_vary(response, ANONYMOUS_VARY)
    return response


def http_endpoint(
    routes: Iterable[str],
    operations: Mapping[str, Op],
    *,
    cors: bool = False,
    accept_post: str | None = None,
    cache: CacheScope | None = None,
    public_cache: bool = False,
) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
    """Turn ``handler(ctx)`` into a functions-framework HTTP function serving ``routes``, with
    one ``Op`` per method it answers (``ENDPOINTS`` keeps them for the OpenAPI document).

    With ``cors``, browsers from the allowed origins may call it cross-origin;
    ``accept_post`` is announced on OPTIONS (WHIP clients look for ``application/sdp``);
    ``cache`` lets shared caches (the CDN) keep its 200 answers to GET: all of them
    ("public", for answers that never depend on the caller) or only those to requests without
    credentials ("anonymous"; see ``with_cache_scope``). ``public_cache`` is ``cache="public"``.
    """
    compiled = [Route(r) for r in routes]
    patterns = tuple(r.pattern for r in compiled)
    declared = {method.upper(): op for method, op in operations.items()}
    allowed = tuple(declared)
    scope: CacheScope | None = "public" if public_cache else cache

    def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
        @functools.wraps(handler)
        def function(request: flask.Request) -> flask.Response:
            response = _serve(handler, request, compiled, declared, accept_post)
            if response.status_code >= 400 and "Cache-Control" not in response.headers:
                # No CDN (Hosting caches for 10 min what says nothing) may keep an error.
                response.headers["Cache-Control"] = NO_STORE
            elif scope is None and "Cache-Control" not in response.headers:
                # Nor an answer for one caller (an owner's stream key, say): never on a default.
                response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
            if scope is not None:
                response = with_cache_scope(response, request, scope)
            return with_cors(response, request, allowed) if cors else response

        function.routes = patterns  # type: ignore[attr-defined]
        function.methods = allowed  # type: ignore[attr-defined]
        function.operations = declared  # type: ignore[attr-defined]
        _register(handler.__name__, patterns, declared)
        return function

    return decorate


def _serve(
    handler: Handler,
    request: flask.Request,
    routes: Sequence[Route],
    operations: Mapping[str, Op],
    accept_post: str | None,
) -> flask.Response:
    try:
        params = _match(routes, request.path)
        if request.method == "OPTIONS":
            headers = {"Allow": ", ".join(operations)}
            if accept_post:
                headers["Accept-Post"] = accept_post
            return flask.Response(status=204, headers=headers)
        operation = operations.get(request.method)
        if operation is None:
            body = {"error": f"Method {request.method} not allowed", "code": "invalid-argument"}
            return json_response(body, 405, {"Allow": ", ".join(operations)})
        services = get_services()
        for part in operation.preloads:
            services.preload(part)
        ctx = Ctx(request, params, services, operation)
        with request_scope():
            return render(handler(ctx), operation)
    except AppError as error:
        if error.http_status >= 500:
            log.error("request failed: %s", error.message, exc_info=error)
        return error_response(error)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"error": "Internal error", "code": "internal"}, 500)


def _match(routes: Sequence[Route], path: str) -> dict[str, str]:
    for route in routes:
        params = route.match(path)
        if params is not None:
            return params
    raise NotFoundError(f"No endpoint at {path}")


# Cloud Tasks retries any non-2xx answer; 429 and 503 with Retry-After shape its backoff.
_TASK_RETRYABLE = frozenset(
    {ErrorCode.UNAVAILABLE, ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.CONFLICT}
)


def task_endpoint(
    routes: Iterable[str], operation: Op
) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
    """Like ``http_endpoint`` (one ``POST`` operation) for Cloud Tasks targets, and permanent
    failures acknowledged (2xx, logged) so the queue does not retry them forever.

    Who may call: in production the task functions are deployed with
    ``--no-allow-unauthenticated``; Cloud Run checks each task's OIDC token (the invoker
    service account holds ``roles/run.invoker``) before this code runs, and no shared token
    is configured. Locally (no IAM in front, and the Cloud Tasks emulator mints no OIDC
    token) the shared ``X-Task-Auth`` token is required, and without one nothing gets in."""
    compiled = [Route(r) for r in routes]

    def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
        @functools.wraps(handler)
        def function(request: flask.Request) -> flask.Response:
            task = request.headers.get("X-CloudTasks-TaskName", "")
            try:
                params = _match(compiled, request.path)
                services = get_services()
                settings = services.settings
                token = settings.task_auth_token
                if token is not None:
                    verify_shared_secret(
                        request.headers.get(TASK_AUTH_HEADER),
                        token.get_secret_value(),
                        TASK_AUTH_HEADER,
                    )
                elif settings.environment != "production":
                    message = f"Task endpoints need LS_TASK_AUTH_TOKEN ({TASK_AUTH_HEADER}) locally"
                    return json_response(
                        {"error": message, "code": str(ErrorCode.UNAUTHENTICATED)}, 401
                    )
                with request_scope():
                    return render(handler(Ctx(request, params, services, operation)), operation)
            except AppError as error:
                if error.code == ErrorCode.UNAUTHENTICATED:
                    return error_response(error)
                if error.code in _TASK_RETRYABLE:
                    log.warning("task %s will be retried: %s", task, error.message)
                    retry = UnavailableError(error.message, retry_after_s=error.retry_after_s or 5)
                    return error_response(error if error.http_status == 429 else retry)
                log.error("task %s failed permanently: %s", task, error.message)
                return json_response(
                    {"acknowledged": True, "error": error.message, "code": str(error.code)}
                )
            except Exception:
                log.exception("task %s crashed", task)
                return json_response({"error": "Internal error", "code": "internal"}, 500)

        patterns = tuple(r.pattern for r in compiled)
        function.routes = patterns  # type: ignore[attr-defined]
        function.methods = ("POST",)  # type: ignore[attr-defined]
        function.operations = {"POST": operation}  # type: ignore[attr-defined]
        _register(handler.__name__, patterns, {"POST": operation})
        return function

    return decorate
