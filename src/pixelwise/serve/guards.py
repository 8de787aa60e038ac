"""ASGI middlewares that guard the reading of a request's body: its declared size and its pace."""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelwise.serve.refusals import error_response

log = logging.getLogger("pixelwise.serve")


class DeclaredSizeLimit:
    """413 in JSON for a request to ``path`` whose Content-Length is over ``max_bytes``, before its body is read.

    The route's own limit (FastAPI's ``max_body_size``) counts the bytes of a body sent without a length and
    stops reading past the limit; for a declared length it would answer in plain text instead of JSON.
    """

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path:
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                message = (
                    f"the upload is {int(declared) / 1048576:.1f} MB, over the limit of "
                    f"{self.max_bytes / 1048576:g} MB; send a smaller file"
                )
                log.warning("%s %s 413: %s", scope["method"], self.path, message)
                await error_response(413, message, headers={"Connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTimeout:
    """408 for an upload that stalls: each read of a request's body waits ``seconds`` at most.

    On the deadline the request's handling is cancelled (the form parser closes the temporary files of a
    half-received upload as it unwinds) and the answer closes the connection. Once the body is complete,
    reads are not timed: a request waiting for its answer reads only to learn that its client left.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = timed_out = answered = False

        async def timed_receive() -> Message:
            nonlocal body_complete, timed_out
            if body_complete:
                return await receive()
            with anyio.move_on_after(self.seconds) as deadline:
                message = await receive()
            if not deadline.cancelled_caught:
                body_complete = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            timed_out = True
            handling.cancel()
            await anyio.lowlevel.checkpoint()  # raises the cancellation
            raise AssertionError("a cancelled scope let its task go on")

        async def watched_send(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        with anyio.CancelScope() as handling:
            await self.app(scope, timed_receive, watched_send)
        if timed_out and not answered:
            message = f"the upload stalled: nothing came for {self.seconds:g} s; the connection is closed"
            log.warning("%s %s 408: %s", scope["method"], scope["path"], message)
            await error_response(408, message, headers={"Connection": "close"})(scope, receive, send)
