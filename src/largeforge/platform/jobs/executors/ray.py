"""The Ray executor (extra ``[ray]``): the job's runner started by a Ray actor on a Ray cluster.

The scale-out path when one machine is not enough: a worker submits each job to the cluster, Ray
places it on a node with room, and the actor there runs exactly the runner the local executor runs
(:class:`~largeforge.platform.jobs.executors.local.ProcessExecution`), relaying its event lines back.
The actor is owned by the worker: when the worker dies, Ray ends the actor, the runner's stdin closes
and the runner stops, so a re-claimed job never runs twice. Run dirs live under LARGEFORGE_HOME, which
must be shared storage on a real cluster so that a job resumes on whichever node gets it next.

``LARGEFORGE_RAY_ADDRESS`` names the cluster (``ray://head:10001``, ``auto``); without it a local Ray
instance is started (and shut down with the executor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from largeforge.errors import Unavailable


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise Unavailable(
            "the ray executor needs Ray: pip install 'largeforge[ray]' (or use --executor local)"
        ) from exc
    return ray


class _RunnerActor:
    """Runs on a Ray node: one runner process. Threaded (``max_concurrency``) so that a terminate
    call is served while a read waits for lines."""

    def __init__(self, job_dir: str, env: dict[str, str]) -> None:
        from largeforge.platform.jobs.executors.local import ProcessExecution

        self.execution = ProcessExecution(Path(job_dir), env)

    def read_lines(self, timeout: float) -> list[str]:
        return self.execution.read_lines(timeout)

    def returncode(self) -> int | None:
        return self.execution.returncode()

    def terminate(self, grace_seconds: float) -> None:
        self.execution.terminate(grace_seconds)


class RayExecution:
    """The worker's side of one actor."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray, self._actor = ray, actor
        self._code: int | None = None

    def read_lines(self, timeout: float) -> list[str]:
        if self._code is not None:
            return []
        return list(self._ray.get(self._actor.read_lines.remote(timeout)))

    def returncode(self) -> int | None:
        if self._code is None:
            self._code = self._ray.get(self._actor.returncode.remote())
            if self._code is not None:
                self._ray.kill(self._actor)  # the actor's work is done: free its slot on the node
        return self._code

    def terminate(self, grace_seconds: float = 10.0) -> None:
        if self._code is None:
            self._ray.get(self._actor.terminate.remote(grace_seconds))


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0) -> None:
        from largeforge.settings import get_settings

        self._ray = _import_ray()
        self._address = address or get_settings().ray_address
        self._num_cpus = num_cpus
        self._started_here = False
        self._actor_class: Any = None

    def _connect(self) -> None:
        if self._actor_class is not None:
            return
        if not self._ray.is_initialized():
            # No address: a local instance, started here and shut down in close().
            self._ray.init(
                address=self._address, include_dashboard=False, log_to_driver=False, configure_logging=False
            )
            self._started_here = self._address is None
        self._actor_class = self._ray.remote(num_cpus=self._num_cpus, max_concurrency=4)(_RunnerActor)

    def start(self, job_dir: Path, env: dict[str, str]) -> RayExecution:
        self._connect()
        actor = self._actor_class.remote(str(job_dir), env)
        return RayExecution(self._ray, actor)

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False
        self._actor_class = None


__all__ = ["RayExecution", "RayExecutor"]
