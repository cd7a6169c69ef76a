"""The OpenAPI document of what /api/v1 offers today (each issue that adds endpoints adds them here)."""

from __future__ import annotations

from typing import Any

from web.api import openapi_frontdesk
from web.api.alerts import ALERT_PATHS, ALERT_SCHEMAS
from web.api.reports import REPORT_PATHS, REPORT_SCHEMAS

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "title", "detail"],
            "properties": {
                "status": {"type": "integer"},
                "title": {"type": "string"},
                "detail": {"type": "string"},
            },
        }
    },
}

ME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "email", "name", "role", "team"],
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["front_desk", "clinician", "supervisor", "manager", "admin"]},
        "team": {"type": ["string", "null"]},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API, with servers pointing at base_url."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rapport API",
            "version": "1",
            "description": (
                "JSON API of Rapport. Authenticate with a bearer token created by an administrator "
                "(`rapport api-token create --email E [--scope read|write] [--expires-days N]`; a read token may "
                "only GET). Errors are JSON objects with an `error` member."
            ),
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/api/v1"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR_SCHEMA,
                "Me": ME_SCHEMA,
                **openapi_frontdesk.SCHEMAS,
                **REPORT_SCHEMAS,
                **ALERT_SCHEMAS,
            },
        },
        "paths": {
            "/me": {
                "get": {
                    "operationId": "getMe",
                    "summary": "The staff account the token acts as",
                    "responses": {
                        "200": {
                            "description": "The account",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}},
                        },
                        "401": _error("Missing, unknown or revoked token"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
                }
            },
            **openapi_frontdesk.PATHS,
            **REPORT_PATHS,
            **ALERT_PATHS,
        },
    }
