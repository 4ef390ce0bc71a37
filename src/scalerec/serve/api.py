"""HTTP API over `Recommender` (FastAPI): the thin layer that turns JSON into service calls.

Every input problem becomes a 4xx with one clear sentence: pydantic bounds in the schema (so the
OpenAPI spec states them and Schemathesis can probe them), service `UserError`s → 422 / 404 / 409,
and bodies over `max_body_bytes` → 413 before they are parsed. Handlers are `async`; service work
runs on one worker thread through `batching.Batcher` (concurrent queries merged into one search;
additions and searches never interleave).
Responses are UTF-8 JSON (orjson when installed); a key with lone surrogates falls back to
`json.dumps(ensure_ascii=True)`, so it cannot crash the encoder.
`FastRecommend` answers *valid* `POST /recommend` bodies without FastAPI's per-request machinery
(pydantic-core validates the raw bytes; ~0.2 ms instead of ~0.9 ms of server CPU per request, which
is what 32 concurrent clients on 2 cores need); anything else, invalid bodies included, goes on to
the FastAPI route, so errors and the OpenAPI document stay exactly as FastAPI makes them.
With `ServeConfig.server_timing` its answers carry a `Server-Timing` header: read (body), parse
(validation), queue (until the service thread starts the batch), the service's stages
(`Recommender.recommend_batch`), resume (back on the event loop), json, app (all of it).
No `from __future__ import annotations` here: FastAPI must see the request models, which are built
per app (their bounds come from the config), as real classes rather than unresolvable strings.
"""

import dataclasses
import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from scalerec.errors import UserError
from scalerec.serve.batching import Batcher
from scalerec.serve.recommender import Conflict, NotFound, Query, Recommendation, Recommender
from scalerec.serve.timing import server_timing

_log = logging.getLogger("scalerec.serve")


def _json_response_class() -> type:
    from starlette.responses import JSONResponse

    class AsciiJSONResponse(JSONResponse):
        def render(self, content: Any) -> bytes:
            return _encode(content)

    return AsciiJSONResponse


class BodyLimit:
    """ASGI middleware: buffer request bodies up to `max_bytes`, answer 413 beyond it."""

    def __init__(self, app: Any, max_bytes: int, response_cls: type) -> None:
        self.app, self.max_bytes, self.response_cls = app, max_bytes, response_cls

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                return await self.too_big(scope, receive, send)
        body = await _read_body(receive, self.max_bytes)
        if body is _TOO_BIG:
            return await self.too_big(scope, receive, send)
        if body is not None:
            await self.app(scope, _replay(body, receive), send)

    async def too_big(self, scope: dict, receive: Any, send: Any) -> None:
        detail = f"request body is larger than the {self.max_bytes}-byte limit"
        await self.response_cls({"detail": detail}, status_code=413)(scope, receive, send)


def _encode(content: Any) -> bytes:
    """JSON bytes: orjson when installed (10x faster than `json`, a tenth of the hot path's Python
    time), else the standard library; strings orjson rejects (lone surrogates) go the ASCII way.
    Dataclasses (`Scored`) become objects of their fields, in field order, either way."""
    orjson = _orjson()
    if orjson is not None:
        try:
            return orjson.dumps(content)
        except TypeError:
            pass
    return json.dumps(
        content, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=dataclasses.asdict
    ).encode()


@functools.cache
def _orjson() -> Any:
    """The orjson module, or None when it is not installed (looked up once)."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson


class FastRecommend:
    """ASGI middleware: the hot path of `POST /recommend` for bodies that validate; the rest passes on
    (to `BodyLimit` → FastAPI). It sits in front of the body limit and applies the same limit itself,
    so the hot path reads its body once, through no extra middleware layer."""

    def __init__(self, app: Any, request_model: Any, batcher: Batcher, limit: BodyLimit) -> None:
        from pydantic import ValidationError

        self.app, self.model, self.batcher, self.invalid = app, request_model, batcher, ValidationError
        self.max_bytes, self.too_big = limit.max_bytes, limit.too_big
        self.timing = batcher.rec.cfg.server_timing

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/recommend" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        json_body = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                json_body = value.startswith(b"application/json")
            elif name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                json_body = False  # the body limit answers 413
                break
        if not json_body:
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        body = await _read_body(receive, self.max_bytes)
        if body is None:  # the client went away
            return
        if body is _TOO_BIG:
            return await self.too_big(scope, receive, send)
        t1 = time.perf_counter()
        try:
            req = self.model.model_validate_json(body)
        except self.invalid:
            return await self.app(scope, _replay(body, receive), send)  # FastAPI's own 422
        t2 = time.perf_counter()
        result = await self.batcher.recommend(Query(req.history, req.k, req.exclude_seen))
        t3 = time.perf_counter()
        if isinstance(result, UserError):
            status, payload = _STATUS.get(type(result), 422), _encode({"detail": str(result)})
        elif isinstance(result, Exception):
            raise result
        else:
            status, payload = 200, _encode(_answer(result))
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
        if self.timing and isinstance(result, Recommendation):
            headers.append((b"server-timing", _timing_header(result, t0, t1, t2, t3)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


_TOO_BIG = object()  # what `_read_body` returns for a body over the limit


def _timing_header(result: Recommendation, t0: float, t1: float, t2: float, t3: float) -> bytes:
    """`Server-Timing` of one hot-path answer (ms): read = body received (t0→t1), parse = validated
    (→t2), queue = waiting for the service thread (→ the batch's start), the batch's own stages,
    resume = from the batch's end back to this handler (t3), json = encoding, up to now; app = t0→now.
    `batch` is the micro-batch's query count, not a duration."""
    start, end = result.window
    stages = [("read", (t1 - t0) * 1e3), ("parse", (t2 - t1) * 1e3), ("queue", (start - t2) * 1e3)]
    stages += list(result.timings.items())
    now = time.perf_counter()
    stages += [("resume", (t3 - end) * 1e3), ("json", (now - t3) * 1e3), ("app", (now - t0) * 1e3)]
    return server_timing(stages)


async def _read_body(receive: Any, max_bytes: int | None = None) -> Any:
    """The whole request body; None if the client disconnected first, `_TOO_BIG` past `max_bytes`."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if max_bytes is not None and size > max_bytes:
            return _TOO_BIG
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that yields `body` once, then defers to the real one (disconnects)."""
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` admits numbers with a zero fraction (`34.0`); strict pydantic does not.
    Such floats become ints so the server accepts what its OpenAPI schema promises; `2.5` and
    strings still fail the strict int check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _schemas(rec: Recommender) -> dict[str, type]:
    """Pydantic request/response models whose bounds come from the service config."""
    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    cfg = rec.cfg
    KeyStr = Annotated[str, Field(min_length=1, max_length=cfg.max_key_chars)]
    Count = Annotated[int, BeforeValidator(_integral)]
    strict = ConfigDict(extra="forbid", strict=True)

    class RecommendRequest(BaseModel):
        model_config = strict
        history: list[KeyStr] = Field(
            min_length=1,
            max_length=cfg.max_history,
            description="Item keys the user interacted with, oldest first.",
        )
        k: Count = Field(10, ge=1, le=cfg.max_k, description="How many items to return.")
        exclude_seen: bool = Field(True, description="Leave items of the history out of the answer.")

    class BatchRequest(BaseModel):
        model_config = strict
        requests: list[RecommendRequest] = Field(min_length=1, max_length=cfg.max_batch)

    class NewItem(BaseModel):
        model_config = strict
        key: KeyStr
        title: str = Field(min_length=1, max_length=2000)
        brand: str = Field("", max_length=500)
        categories: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=50)

    class ScoredItem(BaseModel):
        key: str
        title: str
        score: float

    class RecommendResponse(BaseModel):
        items: list[ScoredItem]
        unknown: list[str] = Field(description="History keys not in the catalog (ignored).")
        used: int = Field(description="History keys used to build the query.")
        error: str | None = Field(None, description="Batch only: why this entry has no answer.")

    class BatchResponse(BaseModel):
        results: list[RecommendResponse]

    class ItemOut(BaseModel):
        key: str
        title: str
        brand: str
        categories: list[str]
        cold_start: bool

    return {
        c.__name__: c
        for c in (RecommendRequest, BatchRequest, NewItem, RecommendResponse, BatchResponse, ItemOut)
    }


_STATUS = {NotFound: 404, Conflict: 409}  # other UserErrors: 422


def _answer(result: Recommendation | UserError) -> dict:
    if isinstance(result, UserError):
        return {"items": [], "unknown": [], "used": 0, "error": str(result)}
    return {"items": result.items, "unknown": result.unknown, "used": result.used, "error": None}


def _error_handlers(app: Any, response_cls: type) -> None:
    """Service errors → 422/404/409 and validation errors → 422, each with a one-sentence `detail`."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Any:
        return response_cls({"detail": str(exc)}, status_code=_STATUS.get(type(exc), 422))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        raw = list(exc.errors())
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in raw]
        if raw and raw[0].get("type") == "json_invalid":
            detail = "request body is not valid JSON"
        elif errors:
            detail = f"{'.'.join(errors[0]['loc'][1:]) or 'body'}: {errors[0]['msg']}"
        else:
            detail = "invalid request"
        return response_cls({"detail": detail, "errors": errors}, status_code=422)


def create_app(rec: Recommender) -> Any:
    """The ASGI app serving `rec`: FastAPI behind the body-size limit and the hot path (`ServeApp`)."""
    from fastapi import FastAPI

    response_cls = _json_response_class()
    s = _schemas(rec)
    if TYPE_CHECKING:  # request models are built per service (limits from ServeConfig)
        RecommendRequest: TypeAlias = Any
        BatchRequest: TypeAlias = Any
        NewItem: TypeAlias = Any
    else:
        RecommendRequest, BatchRequest, NewItem = s["RecommendRequest"], s["BatchRequest"], s["NewItem"]
    app = FastAPI(
        title="scalerec",
        version="1",
        default_response_class=response_cls,
        description="Next-item recommendations from a trained scalerec run.",
    )
    batcher = Batcher(rec, rec.cfg.max_batch)
    _error_handlers(app, response_cls)

    error_doc = {"description": "Bad input, with a one-sentence `detail`."}
    errs: dict[int | str, dict[str, Any]] = {
        400: {"description": "Body is not decodable (e.g. not UTF-8)."},
        422: error_doc,
        413: {"description": "Body too large."},
    }

    not_found: dict[int | str, dict[str, Any]] = {
        404: {"description": "None of the history keys is in the catalog."}
    }

    @app.post("/recommend", response_model=s["RecommendResponse"], responses={**errs, **not_found})
    async def recommend(req: RecommendRequest) -> Any:
        """Top-k items for one history; unknown keys are ignored and listed, none known → 404."""
        result = await batcher.recommend(Query(req.history, req.k, req.exclude_seen))
        if isinstance(result, Exception):
            raise result
        return response_cls(_answer(result))  # already the response shape: skip re-validation

    @app.post("/recommend/batch", response_model=s["BatchResponse"], responses={**errs})
    async def recommend_batch(req: BatchRequest) -> Any:
        """Many histories in one index search; a bad entry gets an `error` instead of items."""
        queries = [Query(r.history, r.k, r.exclude_seen) for r in req.requests]
        return {"results": [_answer(r) for r in await batcher.run(rec.recommend_batch, queries)]}

    @app.post(
        "/items",
        status_code=201,
        response_model=s["ItemOut"],
        responses={
            **errs,
            409: {"description": f"Key already exists, or {rec.cfg.max_new_items} items were added already."},
        },
    )
    async def add_item(item: NewItem) -> Any:
        """Add a cold-start item from its text; it is recommendable in the next request. At most
        `max_new_items` items may be added while the service runs (then 409)."""
        return vars(await batcher.run(rec.add_item, item.key, item.title, item.brand, item.categories))

    @app.get(
        "/items/{key:path}", response_model=s["ItemOut"], responses={404: {"description": "Unknown key."}}
    )
    async def get_item(key: str) -> Any:
        """Metadata of one item (catalog or cold-start)."""
        return vars(await batcher.run(rec.get_item, key))

    @app.get("/healthz")
    async def healthz() -> Any:
        """Liveness, catalog size and the index report (kind, recall@10 vs exact at build)."""
        return {"status": "ok", "items": len(rec), "index": rec.index.report, "batching": batcher.stats()}

    app.state.recommender = rec
    limit = BodyLimit(app, rec.cfg.max_body_bytes, response_cls)
    return ServeApp(app, FastRecommend(limit, RecommendRequest, batcher, limit), response_cls)


class ServeApp:
    """The ASGI app that is served: `/recommend` hot path → body limit → the FastAPI app.

    Sits outside FastAPI so the hot path skips its per-request work too (routing, middleware
    stack, telemetry checks); every attribute (`state`, `openapi`, `routes`…) is the FastAPI app's.
    It also turns an unexpected exception into a finished 500 answer: Uvicorn closes the connection
    when an app raises, so the client's next request on that keep-alive connection got a reset.
    """

    def __init__(self, api: Any, entry: Any, response_cls: type) -> None:
        self.api, self.entry, self.response_cls = api, entry, response_cls

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.entry(scope, receive, send)
        state = {"started": False, "done": False}

        async def tracked(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["done"] = True
            await send(message)

        try:
            await self.entry(scope, receive, tracked)
        except Exception as exc:  # a bug must cost one request, never the client's connection
            _log.exception("error while answering %s %s", scope.get("method"), scope.get("path"))
            if state["done"]:
                return  # Starlette already answered 500 and re-raised: the connection stays usable
            if state["started"]:
                raise  # a half-sent response: only closing the connection can end it
            detail = {"detail": f"internal error ({type(exc).__name__}); see the server log"}
            await self.response_cls(detail, status_code=500)(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)
