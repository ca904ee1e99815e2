"""A fake OpenAI chat-completions endpoint for tests: an httpx2 client over a ``MockTransport``.

It stands for a provider or a served model that cannot run in a test; openai 3.x speaks httpx2, so
the client is handed to ``openai.OpenAI(http_client=...)``. Everything behind the client runs for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2


def fake_chat_client(
    reply: Callable[[dict[str, Any]], str], seen: list[Any] | None = None, status: int = 200
) -> Any:
    """Chat completions answer ``reply(request_body)``; ``seen`` collects requests; ``status`` != 200 fails them."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        if status != 200:
            return httpx2.Response(status, json={"error": {"message": "nope", "type": "x"}})
        body = json.loads(request.content)
        message = {"role": "assistant", "content": reply(body)}
        return httpx2.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            },
        )

    return httpx2.Client(transport=httpx2.MockTransport(handler))
