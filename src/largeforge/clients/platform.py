"""A client for the control plane's REST API (``largeforge server``): projects, keys, datasets, jobs,
models, deployments and usage.

It speaks HTTP with httpx and imports no server code. Each resource is an attribute, and every call
returns the server's JSON (dicts and lists) so that new response fields reach callers without a client
release. Errors arrive as the typed classes of :mod:`largeforge.clients.errors`, carrying the server's
message and request id.

    from largeforge.clients import PlatformClient
    with PlatformClient("http://127.0.0.1:8000", api_key="lf_…") as lf:
        job = lf.jobs.submit("demo", "train", {"recipe": recipe})
        for event in lf.jobs.events("demo", job["id"]):
            print(event.event, event.data)
        print(lf.jobs.wait("demo", job["id"])["state"])

Authentication is an API key (``Authorization: Bearer``) or a browser-style session from
:meth:`PlatformClient.login`, whose CSRF token is sent back on every write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx

from largeforge.clients._sse import ServerEvent, parse_events
from largeforge.clients.errors import BadRequest, ConnectionFailed, WaitTimedOut, raise_for_platform_status

API = "/api/v1"
CSRF_HEADER = "X-CSRF-Token"
# Job states after which nothing more happens to a job (the jobs API's vocabulary).
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
_Self = TypeVar("_Self", bound="PlatformClient")
# Resources have a ``list`` method, which shadows the builtin inside their class bodies.
Rows = list[dict[str, Any]]


def _segment(value: str) -> str:
    """One path segment: ids and names are quoted so that a name never changes the path."""
    return quote(str(value), safe="")


def _items(body: Any) -> Rows:
    """A list endpoint's rows, whether it answers a bare list or ``{"data": [...], "count": n}``."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return list(body["data"])
    return list(body)


class PlatformClient:
    """A blocking client for one control plane.

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000`` (without ``/api/v1``).
        api_key: an API key (``lf_…``); leave it out and call :meth:`login` for a session instead.
        timeout: seconds per request (streams of job events wait as long as the job runs).
        transport: an httpx transport (tests pass ``httpx.MockTransport`` or an ASGI transport).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith(API):
            self.base_url = self.base_url[: -len(API)]
        self.api_key = api_key
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._csrf_token: str | None = None
        self.projects = Projects(self)
        self.keys = Keys(self)
        self.datasets = Datasets(self)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.deployments = Deployments(self)
        self.usage = Usage(self)

    # -- plumbing ------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request to ``/api/v1{path}`` and return its JSON (``None`` for an empty body).

        Raises:
            ClientError: a typed subclass for each error status; ConnectionFailed when nothing answers.
        """
        response = self._send(method, path, **kwargs)
        if not response.content:
            return None
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self._csrf_token and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers[CSRF_HEADER] = self._csrf_token
        try:
            response = self.http.request(method, API + path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"could not reach the control plane at {self.base_url}: {exc}") from exc
        raise_for_platform_status(response)
        return response

    def url(self, path: str) -> str:
        """The absolute URL of an API path (what a browser or another client would call)."""
        return f"{self.base_url}{API}{path}"

    # -- identity ------------------------------------------------------------------------------

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Start a session: the server's cookie is kept by this client and its CSRF token is sent on
        every later write. Returns the login body (user id, email, session expiry)."""
        body = self.request("POST", "/auth/login", json={"email": email, "password": password})
        self._csrf_token = body["csrf_token"]
        return dict(body)

    def logout(self) -> None:
        """End the session started by :meth:`login` (a no-op on the server for API keys)."""
        self.request("POST", "/auth/logout")
        self._csrf_token = None

    def me(self) -> dict[str, Any]:
        """The signed-in user."""
        return dict(self.request("GET", "/auth/me"))

    def create_user(self, email: str, password: str, *, is_admin: bool = False) -> dict[str, Any]:
        """A new user (global admins only)."""
        return dict(
            self.request("POST", "/users", json={"email": email, "password": password, "is_admin": is_admin})
        )

    def health(self) -> dict[str, Any]:
        """``/ready`` of the server: raises ServerError while it starts or when its database is down."""
        try:
            response = self.http.get("/ready")
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"could not reach the control plane at {self.base_url}: {exc}") from exc
        raise_for_platform_status(response)
        return dict(response.json())

    def openai_client(self, project: str, deployment: str, **options: Any) -> Any:
        """An ``openai.OpenAI`` client pointed at a deployment's metered gateway, using this API key.

        Raises:
            BadRequest: this client has no API key (the gateway takes keys, not browser sessions).
        """
        import openai

        if not self.api_key:
            raise BadRequest("the gateway needs an API key: create one with keys.create() and pass api_key=")
        return openai.OpenAI(
            base_url=self.url(f"/projects/{_segment(project)}/deployments/{_segment(deployment)}/v1"),
            api_key=self.api_key,
            **options,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Resource:
    def __init__(self, client: PlatformClient) -> None:
        self._client = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._client.request(method, path, **kwargs)


class Projects(_Resource):
    """Projects and their members (``project`` arguments take an id or a name everywhere)."""

    def list(self) -> Rows:
        """The projects the caller belongs to, each with the caller's role."""
        return _items(self._call("GET", "/projects"))

    def create(
        self, name: str, *, description: str | None = None, max_running_jobs: int | None = None
    ) -> dict[str, Any]:
        """A new project owned by the caller."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if max_running_jobs is not None:
            body["max_running_jobs"] = max_running_jobs
        return dict(self._call("POST", "/projects", json=body))

    def get(self, project: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/projects/{_segment(project)}"))

    def members(self, project: str) -> Rows:
        return _items(self._call("GET", f"/projects/{_segment(project)}/members"))

    def set_member(self, project: str, email: str, role: str) -> dict[str, Any]:
        """Add a user by email or change their role (project admins)."""
        return dict(
            self._call("PUT", f"/projects/{_segment(project)}/members", json={"email": email, "role": role})
        )

    def remove_member(self, project: str, user_id: str) -> None:
        self._call("DELETE", f"/projects/{_segment(project)}/members/{_segment(user_id)}")


class Keys(_Resource):
    """API keys: the secret is in the create answer's ``key`` and nowhere else, ever."""

    def create(
        self,
        name: str,
        *,
        project: str | None = None,
        role: str | None = None,
        expires_at: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> dict[str, Any]:
        fields = {
            "name": name,
            "project_id": project,
            "role": role,
            "expires_at": expires_at,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
        }
        return dict(self._call("POST", "/keys", json={k: v for k, v in fields.items() if v is not None}))

    def list(self, project: str | None = None) -> Rows:
        """The caller's own keys, or every key of ``project`` (project admins)."""
        path = f"/projects/{_segment(project)}/keys" if project else "/keys"
        return _items(self._call("GET", path))

    def revoke(self, key_id: str, *, project: str | None = None) -> dict[str, Any]:
        path = (
            f"/projects/{_segment(project)}/keys/{_segment(key_id)}"
            if project
            else f"/keys/{_segment(key_id)}"
        )
        return dict(self._call("DELETE", path))


class Datasets(_Resource):
    """A project's datasets: uploads (streamed from disk), versions, validation and previews."""

    def upload(
        self, project: str, file: str | Path | IO[bytes], *, name: str, format: str | None = None
    ) -> dict[str, Any]:
        """Upload a data file as a new version of dataset ``name``; the body is streamed from disk in
        chunks (httpx's multipart encoder reads the file as it sends), never loaded whole."""
        data = {"name": name, **({"format": format} if format else {})}
        if isinstance(file, str | Path):
            path = Path(file).expanduser()
            if not path.is_file():
                raise BadRequest(
                    f"no file {path} to upload; pass the path of a .jsonl, .json, .csv or .parquet file"
                )
            with path.open("rb") as handle:
                return self._upload(project, handle, path.name, data)
        return self._upload(project, file, getattr(file, "name", "upload"), data)

    def _upload(self, project: str, handle: IO[bytes], filename: str, data: dict[str, str]) -> dict[str, Any]:
        files = {"file": (Path(str(filename)).name, handle, "application/octet-stream")}
        return dict(self._call("POST", f"/projects/{_segment(project)}/datasets", data=data, files=files))

    def list(self, project: str) -> Rows:
        return _items(self._call("GET", f"/projects/{_segment(project)}/datasets"))

    def get(self, project: str, dataset: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/projects/{_segment(project)}/datasets/{_segment(dataset)}"))

    def versions(self, project: str, dataset: str) -> Rows:
        return _items(
            self._call("GET", f"/projects/{_segment(project)}/datasets/{_segment(dataset)}/versions")
        )

    def version(self, project: str, dataset: str, version: int | str) -> dict[str, Any]:
        """One version (a number such as 2, or a version id)."""
        return dict(self._call("GET", self._version_path(project, dataset, version)))

    def report(self, project: str, dataset: str, version: int | str) -> dict[str, Any]:
        """The validation report the data library made of that upload."""
        return dict(self._call("GET", self._version_path(project, dataset, version) + "/report"))

    def preview(
        self, project: str, dataset: str, version: int | str, *, rows: int = 10, model: str | None = None
    ) -> dict[str, Any]:
        """The first ``rows`` rows; with ``model`` (a project model), also rendered through its
        tokenizer with the trained-on mask."""
        params: dict[str, Any] = {"rows": rows, **({"model": model} if model else {})}
        return dict(
            self._call("GET", self._version_path(project, dataset, version) + "/preview", params=params)
        )

    def _version_path(self, project: str, dataset: str, version: int | str) -> str:
        return f"/projects/{_segment(project)}/datasets/{_segment(dataset)}/versions/{_segment(str(version))}"


class Jobs(_Resource):
    """Jobs: submit a train/evaluate/export/pipeline spec, follow it live, cancel, retry, resume."""

    def _path(self, project: str, job: str = "", tail: str = "") -> str:
        path = f"/projects/{_segment(project)}/jobs"
        return path + (f"/{_segment(job)}" if job else "") + tail

    def submit(
        self,
        project: str,
        kind: str,
        spec: dict[str, Any],
        *,
        priority: int = 0,
        max_attempts: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Queue a job; the server validates ``spec`` for ``kind`` and answers 422 naming the bad field."""
        body: dict[str, Any] = {"kind": kind, "spec": spec, "priority": priority}
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        if name is not None:
            body["name"] = name
        return dict(self._call("POST", self._path(project), json=body))

    def list(self, project: str, **filters: Any) -> Rows:
        """The project's jobs, newest first; ``filters`` go to the query string (``state=``, ``limit=``)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return _items(self._call("GET", self._path(project), params=params))

    def get(self, project: str, job: str) -> dict[str, Any]:
        return dict(self._call("GET", self._path(project, job)))

    def logs(self, project: str, job: str, **params: Any) -> str:
        """The job's log text (the server's body, whether plain text or ``{"text"|"lines": …}``)."""
        response = self._client._send("GET", self._path(project, job, "/logs"), params=params)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict):
                lines = body.get("lines")
                return "\n".join(map(str, lines)) if isinstance(lines, list) else str(body.get("text", ""))
        return response.text

    def cancel(self, project: str, job: str) -> dict[str, Any]:
        return dict(self._call("POST", self._path(project, job, "/cancel")))

    def retry(self, project: str, job: str) -> dict[str, Any]:
        return dict(self._call("POST", self._path(project, job, "/retry")))

    def resume(self, project: str, job: str) -> dict[str, Any]:
        return dict(self._call("POST", self._path(project, job, "/resume")))

    def events(
        self,
        project: str,
        job: str,
        *,
        after: int | None = None,
        reconnect_delay: float = 0.5,
        deadline: float | None = None,
    ) -> Iterator[ServerEvent]:
        """Yield the job's events as they happen, until it ends: ``progress`` (the worker's
        :class:`~largeforge.progress.JsonLinesProgress` records), ``state``, ``log``, ``metric``, and a
        last ``end`` event with the final state.

        A dropped connection is reopened from the last event id seen (``?after=`` and ``Last-Event-ID``),
        so no event is lost or repeated. The generator ends once the job is in a terminal state and
        its stream has been read to the end.

        Args:
            after: start after this sequence number (``None``: from the first event).
            deadline: a ``time.monotonic()`` value after which :class:`WaitTimedOut` is raised.
        """
        last = after
        path = self._path(project, job, "/events")
        while True:
            stream = _Stream(self._client, path, last, deadline)
            for event in stream.read():
                last = event.seq if event.seq is not None else last
                yield _unwrapped(event)
                _check(deadline, job)
            _check(deadline, job)
            if self.get(project, job).get("state") in TERMINAL_STATES:
                if not stream.ended:
                    # The stream broke after the job ended: one more read drains what is left.
                    yield from map(_unwrapped, _Stream(self._client, path, last, deadline).read())
                return
            time.sleep(reconnect_delay)

    def wait(self, project: str, job: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job ends (following its event stream) and return its final state.

        Raises:
            WaitTimedOut: ``timeout`` seconds passed first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self.events(project, job, deadline=deadline):
            pass
        return self.get(project, job)


def _unwrapped(event: ServerEvent) -> ServerEvent:
    """The jobs API wraps each payload as ``{"seq", "time", "type", "data"}``; callers get the payload
    as ``data`` (a ``progress`` record, ``{"state": …}``, ``{"message": …}``, a metric record)."""
    body = event.data
    if isinstance(body, dict) and "type" in body and "data" in body:
        return ServerEvent(id=event.id, event=event.event, data=body["data"], time=body.get("time"))
    return event


def _check(deadline: float | None, job: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise WaitTimedOut(f"job {job} did not finish in time; it keeps running on the server")


class _Stream:
    """One connection to an event stream; ``events`` yields what it delivers and ``ended`` then says
    whether the server closed it (True) or the connection broke or timed out (False)."""

    # How long to wait for a byte before reconnecting: the server sends keep-alives more often.
    read_timeout = 30.0

    def __init__(self, client: PlatformClient, path: str, after: int | None, deadline: float | None) -> None:
        self._client, self._path, self._after, self._deadline = client, path, after, deadline
        self.ended = False

    def read(self) -> Iterator[ServerEvent]:
        params = {"after": self._after} if self._after is not None else {}
        headers = {"Accept": "text/event-stream"}
        if self._after is not None:
            headers["Last-Event-ID"] = str(self._after)
        read = self.read_timeout
        if self._deadline is not None:
            read = max(0.1, min(read, self._deadline - time.monotonic()))
        timeout = httpx.Timeout(self._client.timeout, read=read)
        try:
            with self._client.http.stream(
                "GET", API + self._path, params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_platform_status(response)
                yield from parse_events(response.iter_lines())
            self.ended = True
        except httpx.TransportError:
            self.ended = False  # broken or idle too long: the caller reconnects from the last id


class Models(_Resource):
    """The project's models in the registry: versions, lineage, aliases, evaluation results."""

    def list(self, project: str) -> Rows:
        return _items(self._call("GET", f"/projects/{_segment(project)}/models"))

    def get(self, project: str, model: str) -> dict[str, Any]:
        return dict(self._call("GET", self._path(project, model)))

    def version(self, project: str, model: str, version: int | str) -> dict[str, Any]:
        """One version with its lineage and evaluation results."""
        return dict(self._call("GET", self._path(project, model) + f"/versions/{_segment(str(version))}"))

    def set_alias(
        self, project: str, model: str, alias: str, ref: int | str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Point ``model@alias`` at ``ref`` (a version number, ``NAME:3`` or ``NAME@staging``)."""
        body = {"ref": str(ref), **({"reason": reason} if reason else {})}
        return dict(self._call("PUT", self._path(project, model) + f"/aliases/{_segment(alias)}", json=body))

    def unset_alias(self, project: str, model: str, alias: str) -> dict[str, Any]:
        return dict(self._call("DELETE", self._path(project, model) + f"/aliases/{_segment(alias)}"))

    def _path(self, project: str, model: str) -> str:
        return f"/projects/{_segment(project)}/models/{_segment(model)}"


class Deployments(_Resource):
    """Serving replicas of a model version (+ adapters) managed by the server."""

    def _path(self, project: str, deployment: str = "", tail: str = "") -> str:
        path = f"/projects/{_segment(project)}/deployments"
        return path + (f"/{_segment(deployment)}" if deployment else "") + tail

    def create(
        self,
        project: str,
        model: str,
        *,
        adapters: dict[str, str] | None = None,
        replicas: int = 1,
        engine: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Start serving ``model`` (``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` of the project) with
        optional LoRA ``adapters`` ({served name: reference}); ``options`` are the API's other fields
        (``served_model_name``, ``max_num_seqs``, ``dtype`` …). The answer's ``endpoint`` is the gateway."""
        body: dict[str, Any] = {"model": model, "replicas": replicas, **options}
        if adapters:
            body["adapters"] = adapters
        if engine:
            body["engine"] = engine
        return dict(self._call("POST", self._path(project), json=body))

    def list(self, project: str) -> Rows:
        return _items(self._call("GET", self._path(project)))

    def get(self, project: str, deployment: str) -> dict[str, Any]:
        return dict(self._call("GET", self._path(project, deployment)))

    def stop(self, project: str, deployment: str) -> dict[str, Any]:
        return dict(self._call("POST", self._path(project, deployment, "/stop")))

    def start(self, project: str, deployment: str) -> dict[str, Any]:
        return dict(self._call("POST", self._path(project, deployment, "/start")))

    def delete(self, project: str, deployment: str) -> None:
        self._call("DELETE", self._path(project, deployment))

    def router_config(self, project: str) -> dict[str, Any]:
        """The expert router's config generated from the project's running deployments."""
        return dict(self._call("GET", f"/projects/{_segment(project)}/router-config"))


class Usage(_Resource):
    """Tokens and requests metered by the gateway, per project and API key."""

    def get(self, project: str, *, group_by: str = "key", **params: Any) -> dict[str, Any]:
        """``{"data": [per group], "totals": {...}}``; ``group_by`` is key, deployment, model or day;
        ``since``/``until`` (ISO 8601) narrow the window."""
        query = {"group_by": group_by, **{k: v for k, v in params.items() if v is not None}}
        return dict(self._call("GET", f"/projects/{_segment(project)}/usage", params=query))


__all__ = ["TERMINAL_STATES", "PlatformClient", "ServerEvent"]
