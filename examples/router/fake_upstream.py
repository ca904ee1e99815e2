"""A minimal, fast OpenAI-compatible upstream for trying the router without a model.

It answers every chat/completion request with a fixed text naming itself, streams it as SSE when
asked, and can misbehave on purpose (always fail with a status, fail the first N requests, die in
the middle of a stream, answer slowly) so retries, fallbacks and ejection can be watched. The
router's tests and ``bench/router.py`` (the "minimal fast upstream" of the latency benchmark) run it.

    python examples/router/fake_upstream.py --port 8001 --name math-1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any


def build_app(
    name: str,
    *,
    fail_status: int = 0,
    fail_first: int = 0,
    die_mid_stream: bool = False,
    delay: float = 0.0,
    chunks: int = 3,
) -> Any:
    """A raw ASGI app (no framework: the benchmark wants the upstream's own cost near zero)."""
    served = {"count": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET":
            payload = {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "fake"}]}
            await _send_json(send, 200, payload)
            return
        served["count"] += 1
        if fail_status or served["count"] <= fail_first:
            await _send_json(send, fail_status or 500, {"error": {"message": f"{name} fails on purpose"}})
            return
        request = json.loads(body or b"{}")
        if delay:
            await asyncio.sleep(delay)
        chat = path.endswith("/chat/completions")
        text = f"answer from {name}"
        if not request.get("stream"):
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            payload = {
                "id": f"cmpl-{name}-{served['count']}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": request.get("model", name),
                "choices": [choice],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }
            await _send_json(send, 200, payload)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        pieces = [f"{text} "[i::chunks] for i in range(chunks)] if chunks > 1 else [text]
        for index, piece in enumerate(pieces):
            event = {
                "id": f"chatcmpl-{name}-{served['count']}",
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()),
                "model": request.get("model", name),
                "choices": [
                    {"index": 0, "delta": {"content": f"{index}:{piece}"}, "finish_reason": None}
                    if chat
                    else {"index": 0, "text": f"{index}:{piece}", "finish_reason": None}
                ],
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {json.dumps(event)}\n\n".encode(),
                    "more_body": True,
                }
            )
            if die_mid_stream and index == 0:
                await asyncio.sleep(0.05)
                os._exit(1)  # the process dies with the response half sent, as a crashed server would
            if delay:
                await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    return app


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--fail-status", type=int, default=0, help="answer every POST with this status")
    parser.add_argument("--fail-first", type=int, default=0, help="answer the first N POSTs with 500")
    parser.add_argument("--die-mid-stream", action="store_true", help="exit after the first streamed chunk")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering / between chunks")
    parser.add_argument("--chunks", type=int, default=3)
    args = parser.parse_args()
    app = build_app(
        args.name,
        fail_status=args.fail_status,
        fail_first=args.fail_first,
        die_mid_stream=args.die_mid_stream,
        delay=args.delay,
        chunks=args.chunks,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
