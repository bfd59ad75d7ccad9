"""The routes of the OpenAPI document that name a resource by id, and minimal valid requests for them.

Read from the document the server serves (and, for WebSockets, which OpenAPI does not describe, from the
app's routing table), so a route added tomorrow is enumerated without anyone listing it. A request
built here passes the route's own validation (required query parameters and body fields, each at the
smallest value its schema allows), so a refusal that follows is the access policy speaking, not a
422 for a missing field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from starlette.routing import BaseRoute, WebSocketRoute

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_ID_NAME = re.compile(r"^(id|.+_id)$")
# Path parameters that are not spelled like ids but name one resource the way an id does.
ID_LIKE_PARAMS = {"model": "GET /v1/models/{model}: a model's /v1 id is its name"}


def is_id_param(name: str) -> bool:
    return bool(_ID_NAME.match(name)) or name in ID_LIKE_PARAMS


@dataclass(frozen=True)
class IdRoute:
    """One operation (or WebSocket route) whose path names a resource by id."""

    method: str  # GET, POST, ... or WS
    path: str  # the template, e.g. /api/jobs/{job_id}
    operation_id: str
    id_params: tuple[str, ...]
    other_params: tuple[str, ...]  # path parameters that are not ids (e.g. a checkpoint's name)
    operation: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"


def http_id_routes(document: dict[str, Any]) -> list[IdRoute]:
    routes: list[IdRoute] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            ids = tuple(n for n in names if is_id_param(n))
            if ids:
                others = tuple(n for n in names if n not in ids)
                routes.append(IdRoute(method.upper(), path, operation["operationId"], ids, others, operation))
    return routes


_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _flat_routes(app: FastAPI) -> list[tuple[BaseRoute, str]]:
    """(route, full path) for every route, included routers unfolded (FastAPI >= 0.16x nests them)."""
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    if iterate is None:
        return [(route, getattr(route, "path", "")) for route in app.routes]
    return [(context.original_route, context.path or "") for context in iterate(app.routes)]


def websocket_routes(app: FastAPI) -> list[IdRoute]:
    """Every WebSocket route of the app, with or without ids (OpenAPI does not list them)."""
    routes: list[IdRoute] = []
    for route, path in _flat_routes(app):
        if isinstance(route, (WebSocketRoute, fastapi_routing.APIWebSocketRoute)):
            names = _PATH_PARAM.findall(path)
            ids = tuple(n for n in names if is_id_param(n))
            others = tuple(n for n in names if n not in ids)
            routes.append(IdRoute("WS", path, path, ids, others, {}))
    return routes


def fill_path(template: str, values: dict[str, Any]) -> str:
    return _PATH_PARAM.sub(lambda m: str(values[m.group(1)]), template)


# ---- minimal valid inputs from JSON Schema ---------------------------------------------------------------


class SchemaInstances:
    """The smallest instance of a JSON Schema (components resolved): required fields only."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.components: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def minimal(self, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "default" in schema:
            return schema["default"]
        if "enum" in schema:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                chosen = next((o for o in options if o.get("type") != "null"), options[0])
                return self.minimal(chosen)
        if "allOf" in schema:
            return self.minimal(schema["allOf"][0])
        kind = schema.get("type", "object")
        if kind == "string":
            return "x" * max(int(schema.get("minLength", 1)), 1)
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
            return max(int(low) + (1 if "exclusiveMinimum" in schema else 0), 1)
        if kind == "boolean":
            return False
        if kind == "array":
            return [self.minimal(schema.get("items", {})) for _ in range(int(schema.get("minItems", 0)))]
        if kind == "null":
            return None
        properties = schema.get("properties", {})
        return {name: self.minimal(properties.get(name, {})) for name in schema.get("required", [])}


@dataclass
class RequestParts:
    """What to send besides the path: query parameters and one of json / files+data / content."""

    params: dict[str, Any]
    json: Any = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    content: bytes | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": self.params}
        for name in ("json", "files", "data", "content"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def minimal_request(route: IdRoute, instances: SchemaInstances) -> RequestParts:
    """Required query parameters and the smallest body the operation's schema accepts."""
    params = {
        p["name"]: instances.minimal(p.get("schema", {}))
        for p in route.operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    parts = RequestParts(params=params)
    body = route.operation.get("requestBody")
    if not body:
        return parts
    media, spec = next(iter(body["content"].items()))
    schema = instances.resolve(spec.get("schema", {}))
    if media == "application/json":
        parts.json = instances.minimal(schema)
    elif media == "multipart/form-data":
        files: dict[str, Any] = {}
        data: dict[str, Any] = {}
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            field = instances.resolve(properties.get(name, {}))
            if field.get("format") == "binary" or field.get("contentMediaType"):
                files[name] = ("data.jsonl", b'{"text": "x"}\n')
            else:
                data[name] = str(instances.minimal(field))
        parts.files, parts.data = files, data
    else:  # raw bytes (application/octet-stream, text/plain ...)
        parts.content = b"x"
    return parts
