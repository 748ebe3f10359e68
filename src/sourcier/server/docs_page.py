"""The API's reference page, rendered on the server from its OpenAPI schema.

FastAPI's Swagger page loads its scripts from a CDN, which an offline server cannot
reach; this page is plain HTML with no script, so it works anywhere.
"""

from __future__ import annotations

import html
import json
from typing import Any

_CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:920px;margin:2em auto;padding:0 1em}"
    "code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.6em;"
    "overflow:auto}h2{border-top:1px solid #ddd;padding-top:.6em}.m{font-weight:bold;"
    "color:#fff;background:#555;padding:0 .4em;border-radius:3px}"
)


def render(schema: dict[str, Any]) -> str:
    """An HTML page listing each route with its description, body and responses."""
    info = schema.get("info", {})
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{html.escape(info.get('title', ''))}"
        f"</title><style>{_CSS}</style><h1>{html.escape(info.get('title', ''))} "
        f"<small>{html.escape(str(info.get('version', '')))}</small></h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        "<p>Machine-readable schema: <a href=openapi.json>openapi.json</a>.</p>",
    ]
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(_operation(path, method, op, components))
    return "\n".join(parts)


def _operation(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> str:
    out = [
        f"<h2><span class=m>{method.upper()}</span> <code>{html.escape(path)}</code></h2>",
        f"<p><b>{html.escape(op.get('summary', ''))}</b></p>",
        f"<p>{html.escape(op.get('description', '')).replace(chr(10) + chr(10), '</p><p>')}</p>",
    ]
    content = op.get("requestBody", {}).get("content", {})
    for kind, spec in content.items():
        shown = _resolve(spec.get("schema", {}), components)
        out.append(
            f"<p>Body ({html.escape(kind)}):</p><pre>"
            f"{html.escape(json.dumps(shown, indent=2, ensure_ascii=False))}</pre>"
        )
    codes = ", ".join(
        f"{html.escape(code)} {html.escape(r.get('description', ''))}"
        for code, r in op.get("responses", {}).items()
    )
    out.append(f"<p>Responses: {codes}</p>")
    return "\n".join(out)


def _resolve(schema: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """``schema`` with its ``$ref``s replaced by the schemas they name (a few levels)."""
    if depth > 4:
        return schema
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return _resolve(components.get(ref.rsplit("/", 1)[-1], {}), components, depth + 1)
        return {k: _resolve(v, components, depth) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_resolve(v, components, depth) for v in schema]
    return schema
