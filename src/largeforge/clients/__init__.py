"""Python clients for LargeForge servers: one inference server, the expert router, or the control plane.

They speak HTTP (the official ``openai`` client for the OpenAI part, httpx for the rest) and import
no server code, so they work against any deployment — or any OpenAI-compatible server.

    from largeforge.clients import RouterClient
    with RouterClient("http://127.0.0.1:8080/v1") as router:
        answer = router.routed_chat("What is 12 times 7?")
        print(answer.expert, answer.text)

    from largeforge.clients import PlatformClient
    with PlatformClient("http://127.0.0.1:8000", api_key="lf_…") as platform:
        print(platform.projects.list())
"""

from __future__ import annotations

from largeforge.clients.errors import (
    AuthenticationFailed,
    BadRequest,
    ClientError,
    ConnectionFailed,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    ServerError,
    StateConflict,
    StreamFailed,
    WaitTimedOut,
)
from largeforge.clients.inference import AsyncInferenceClient, InferenceClient
from largeforge.clients.platform import PlatformClient, ServerEvent
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
    "PayloadTooLarge",
    "PermissionDenied",
    "PlatformClient",
    "RateLimited",
    "ResourceNotFound",
    "RoutedChat",
    "RouterClient",
    "ServerError",
    "ServerEvent",
    "StateConflict",
    "StreamFailed",
    "WaitTimedOut",
]
