"""The clients reuse the router's process fixtures (fake upstreams and the router itself)."""

from tests.routing.conftest import fake_upstream, router_process

__all__ = ["fake_upstream", "router_process"]
