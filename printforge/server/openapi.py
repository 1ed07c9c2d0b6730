"""The OpenAPI 3.1 document, generated from the handler table so it cannot drift from it."""

from __future__ import annotations

import re
from typing import Any

from printforge import __version__
from printforge.server.rpc import HandlerTable, NoParams
from printforge.server.views import ARTIFACT_FILES

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses() -> dict[str, Any]:
    content = {"application/json": {"schema": _ERROR}}
    return {
        str(code): {"description": text, "content": content}
        for code, text in (
            (400, "bad input (JSON-RPC -32700, -32600, -32602)"),
            (401, "missing or invalid API key (-32001)"),
            (403, "the key's role or capabilities do not allow this (-32003)"),
            (404, "not found (-32004)"),
            (409, "conflict with the job's or printer's state (-32009)"),
            (429, "rate limited (-32029), see Retry-After"),
        )
    }


def _hoist(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's local $defs into components so every $ref resolves."""
    for name, sub in schema.pop("$defs", {}).items():
        defs[name] = sub
    return schema


def _fix_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _fix_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_fix_refs(v) for v in node]
    return node


def openapi_document(table: HandlerTable) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "integer", "description": "JSON-RPC error code"},
                        "message": {"type": "string"},
                        "data": {"type": "object"},
                    },
                }
            },
        }
    }
    paths: dict[str, Any] = {}
    for ep in table.endpoints.values():
        if ep.http is None:
            continue
        verb, path = ep.http
        path_params = set(re.findall(r"{(\w+)}", path))
        op: dict[str, Any] = {
            "operationId": ep.method,
            "summary": ep.summary,
            "description": f"JSON-RPC method `{ep.method}`; needs {ep.needs()}.",
            "tags": [ep.method.split(".")[0]],
            "responses": {
                str(ep.http_status): {
                    "description": "success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_error_responses(),
            },
        }
        if ep.result_example is not None:
            op["responses"][str(ep.http_status)]["content"]["application/json"]["example"] = (
                ep.result_example
            )
        schema = _hoist(ep.params.model_json_schema(by_alias=True), schemas)
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        parameters = [
            {"name": n, "in": "path", "required": True, "schema": props.get(n, {"type": "string"})}
            for n in sorted(path_params)
        ]
        if verb == "GET":
            parameters += [
                {"name": n, "in": "query", "required": n in required, "schema": s}
                for n, s in props.items()
                if n not in path_params
            ]
        elif ep.params is not NoParams and set(props) - path_params:
            body = {k: v for k, v in schema.items() if k not in ("properties", "required")}
            body["properties"] = {k: v for k, v in props.items() if k not in path_params}
            body["required"] = sorted(required - path_params)
            name = ep.params.__name__
            schemas[name] = body
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
        if parameters:
            op["parameters"] = parameters
        paths.setdefault(path, {})[verb.lower()] = op
    paths["/api/uploads"] = {
        "post": {
            "operationId": "upload",
            "summary": "Upload an STL, 3MF, OBJ or G-code file to start a job from",
            "description": "Raw body with ?filename=NAME.ext, or multipart with a part named "
            "`file`. Returns the `upload` name that job.submit takes. Needs the operator role.",
            "tags": ["job"],
            "parameters": [{"name": "filename", "in": "query", "schema": {"type": "string"}}],
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                }
            },
            "responses": {
                "201": {
                    "description": "stored",
                    "content": {
                        "application/json": {
                            "example": {
                                "upload": "ab12…ef.stl",
                                "kind": "model",
                                "sha256": "ab12…ef",
                                "bytes": 684,
                                "filename": "cube.stl",
                            }
                        }
                    },
                },
                **_error_responses(),
            },
        }
    }
    paths["/api/jobs/{job_id}/artifacts/{name}"] = {
        "get": {
            "operationId": "artifact",
            "summary": "Download a job's artifact",
            "tags": ["job"],
            "parameters": [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(ARTIFACT_FILES)},
                },
            ],
            "responses": {"200": {"description": "the file"}, **_error_responses()},
        }
    }
    paths["/api/rpc"] = {
        "post": {
            "operationId": "rpc",
            "summary": "Any method as JSON-RPC 2.0 over HTTP (single or batch)",
            "tags": ["rpc"],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "JSON-RPC response"}},
        }
    }
    for path, summary in (
        ("/health/live", "The process answers"),
        ("/health/ready", "The store is open and the server accepts jobs (503 otherwise)"),
        ("/health", "Detail per agent, LLM provider, printer, broker and store"),
        ("/metrics", "Prometheus exposition, printforge_* series"),
    ):
        paths[path] = {
            "get": {
                "operationId": path.strip("/").replace("/", "."),
                "summary": summary,
                "tags": ["health"],
                "responses": {"200": {"description": "ok"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "printforge",
            "version": __version__,
            "description": "From a sentence to a printed part. The same methods are available "
            "as JSON-RPC 2.0 over the websocket at /ws, which also pushes `job.event` and "
            "`printer.status` notifications.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": _fix_refs(schemas),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }
