"""What the studio's API says of itself in its OpenAPI schema: the error answers, the event stream's
and the PNG answers' forms, and the job form's fields as request properties."""

from typing import Any

from .models import ErrorMessage, FieldInfo

__all__ = ["ERRORS", "EVENTS", "FULL", "JSON_ERRORS", "PNG", "field_schemas"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text}
    for code, text in ((400, "bad input"), (404, "unknown job"), (422, "invalid option"))
}
FULL: dict[int | str, dict[str, Any]] = {507: {"model": ErrorMessage, "description": "no room to store an upload"}}
# The same for a route whose own answers are not JSON (FastAPI would file its errors under the route's type).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": e["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
    for code, e in ERRORS.items()
}


EVENTS: dict[int | str, dict[str, Any]] = {  # OpenAPI 3.2's form for an event stream, as FastAPI writes it
    200: {
        "description": "Successful Response",
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string"},
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG"}}


def field_schemas(fields: list[FieldInfo]) -> dict[str, Any]:
    """OpenAPI properties of the option fields (image options become file fields)."""
    out: dict[str, Any] = {}
    for f in fields:
        schema: dict[str, Any] = {"description": f.help}
        if f.kind in ("int", "float"):
            schema["type"] = "integer" if f.kind == "int" else "number"
            schema |= {k: v for k, v in (("minimum", f.minimum), ("maximum", f.maximum)) if v is not None}
        elif f.kind == "bool":
            schema["type"] = "boolean"
        elif f.kind == "numbers":
            schema |= {"type": "string", "description": f"{f.help} (numbers separated by spaces)"}
        elif f.kind != "file":
            schema["type"] = "string"
            if f.choices:
                schema["enum"] = list(f.choices)
        if f.kind != "file":
            out[f.name] = schema
        if f.upload:
            binary = {"type": "string", "format": "binary"}
            out[f.upload] = {"description": f"{f.name}: {f.help}", **binary}
            if f.multiple:
                out[f.upload] = {"description": f"{f.name}: {f.help}", "type": "array", "items": binary}
    return out
