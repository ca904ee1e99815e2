"""Python clients for LargeForge servers: one inference server, or the expert router.

They speak HTTP (the official ``openai`` client for the OpenAI part, httpx for the rest) and import
no server code, so they work against any deployment — or any OpenAI-compatible server.

    from largeforge.clients import RouterClient
    with RouterClient("http://127.0.0.1:8080/v1") as router:
        answer = router.routed_chat("What is 12 times 7?")
        print(answer.expert, answer.text)
"""

from __future__ import annotations

from largeforge.clients.errors import (
    AuthenticationFailed,
    BadRequest,
    ClientError,
    ConnectionFailed,
    ModelNotFound,
    RateLimited,
    ServerError,
    StreamFailed,
)
from largeforge.clients.inference import AsyncInferenceClient, InferenceClient
from largeforge.clients.router import AsyncRouterClient, RoutedChat, RouterClient

__all__ = [
    "AsyncInferenceClient",
    "AsyncRouterClient",
    "AuthenticationFailed",
    "BadRequest",
    "ClientError",
    "ConnectionFailed",
    "InferenceClient",
    "ModelNotFound",
    "RateLimited",
    "RoutedChat",
    "RouterClient",
    "ServerError",
    "StreamFailed",
]
