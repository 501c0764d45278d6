"""Reading request bodies with a cap, before anything else looks at them."""

from __future__ import annotations

from starlette.requests import Request

from app.errors import BadRequest, PayloadTooLarge


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, or PayloadTooLarge (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType()


class UnsupportedMediaType(BadRequest):
    """The request body must be application/json."""

    status = 415
    code = "unsupported_media_type"
