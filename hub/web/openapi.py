"""The OpenAPI 3.1 document, built from the route table and the request models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hub.models import Role
from hub.web.auth import CSRF_HEADER, SESSION_COOKIE
from hub.web.routing import SAFE_METHODS, Access, Ctx, Route, RouteTable, respond

routes = RouteTable("meta")

REF = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The cookie `POST /api/login` sets.",
    },
    "csrf": {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "The session's CSRF token; needed with the cookie to change state.",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `POST /api/agents/{id}/tokens`.",
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}
OPENAPI = web.AppKey("openapi", dict)


def build(table: Sequence[Route], *, title: str, version: str) -> dict[str, Any]:
    """The document for a list of routes."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for route in table:
        if route.operation_id in seen:
            raise ValueError(f"two routes share the operation id {route.operation_id}")
        seen.add(route.operation_id)
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    access = route.access.value if isinstance(route.access, Access) else route.access.name.lower()
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "x-access": access,
        "responses": _responses(route),
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
        for name in route.path_params
    ]
    if route.query is not None:
        parameters += _query_parameters(route.query, schemas)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(route.body, schemas)}},
        }
    if isinstance(route.access, Role):
        if route.method in SAFE_METHODS:
            operation["security"] = [{"session": []}, {"bearer": []}]
        else:
            operation["security"] = [{"session": [], "csrf": []}, {"bearer": []}]
    else:
        operation["security"] = []
    if route.access is Access.WEBHOOK:
        operation["description"] = "Called by the provider; the channel checks its signature."
    return operation


def _responses(route: Route) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
    responses: dict[str, Any] = {str(route.status): {"description": "Success"}}
    if route.body is not None or route.query is not None:
        responses["422"] = {"description": "The input did not validate", **error}
    if route.body is not None:
        responses["400"] = {"description": "The body is not JSON", **error}
        responses["415"] = {"description": "The body is not declared as JSON", **error}
    if isinstance(route.access, Role):
        responses["401"] = {"description": "Not logged in", **error}
        responses["403"] = {"description": "Role too low, or CSRF token missing", **error}
    if route.path_params:
        responses["404"] = {"description": "No such object", **error}
    return responses


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF)
    _add_schemas(schemas, schema.pop("$defs", {}))
    _add_schemas(schemas, {model.__name__: schema})
    return {"$ref": REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    _add_schemas(schemas, schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if prop.get("type") == "array":
            parameter.update(style="form", explode=False)
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _add_schemas(schemas: dict[str, Any], new: dict[str, Any]) -> None:
    for name, schema in new.items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"two different request models are named {name}")
        schemas[name] = schema


@routes.get("/api/openapi.json", Access.PUBLIC)
async def openapi_document(ctx: Ctx) -> web.StreamResponse:
    """This API's OpenAPI 3.1 document."""
    return respond(ctx.request.app[OPENAPI])
