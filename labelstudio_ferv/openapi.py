"""OpenAPI documentation of the one error shape and of path ids, shared by every API module."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorBody(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable reason.")
    message = serializers.CharField(help_text="Plain-words explanation fit to show a user.")
    details = serializers.JSONField(required=False, help_text="Per-field errors, when any.")


class ErrorOutput(serializers.Serializer):
    error = ErrorBody()


def error_response(description: str) -> OpenApiResponse:
    """Document an error status with the one error shape every endpoint uses."""
    return OpenApiResponse(ErrorOutput, description=description)


def path_id(name: str, description: str) -> OpenApiParameter:
    """Document an id in the path (positive, 64-bit)."""
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        OpenApiParameter.PATH,
        description=description,
    )


# The two errors every endpoint can answer.
E400 = error_response("Malformed request: the message names what is wrong.")
E401 = error_response("No valid token or session.")


def document_body_refusals(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: what any operation that reads a body may answer.

    A body over the size limit is refused with 413 and one in a media type the operation does
    not read with 415, both in the error shape, before the view runs; documented here once
    rather than on each view.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}}
    refusals = {
        "413": "The body is over the size limit.",
        "415": "The body is in a media type this operation does not read.",
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in refusals.items():
                responses.setdefault(code, {"content": error, "description": description})
    return result
