"""Router metrics in the Prometheus text format (``GET /metrics``).

Owns the counters and latency histograms per expert: requests by outcome, routing decisions by
kind, upstream failures, retries, fallbacks and cache hits. Written by hand (a few dicts) because
the router needs five metric families, not a client library's registry and its global state.
"""

from __future__ import annotations

from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RouterMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = defaultdict(int)  # (expert, outcome)
        self.decisions: dict[tuple[str, str], int] = defaultdict(int)  # (expert, how)
        self.upstream_failures: dict[str, int] = defaultdict(int)
        self.fallbacks: dict[str, int] = defaultdict(int)
        self.cache_hits: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._latency_count: dict[str, int] = defaultdict(int)

    def observe(self, expert: str, outcome: str, seconds: float) -> None:
        """One finished request: its outcome (ok, client_error, upstream_failed …) and latency."""
        self.requests[(expert, outcome)] += 1
        counts = self._latency.setdefault(expert, [0] * len(BUCKETS))
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[index] += 1
        self._latency_sum[expert] += seconds
        self._latency_count[expert] += 1

    def render(self) -> str:
        lines: list[str] = []
        _family(lines, "largeforge_router_requests_total", "counter", "Requests by expert and outcome.")
        for (expert, outcome), value in sorted(self.requests.items()):
            lines.append(f'largeforge_router_requests_total{{expert="{expert}",outcome="{outcome}"}} {value}')
        _family(
            lines, "largeforge_router_decisions_total", "counter", "Routing decisions by expert and kind."
        )
        for (expert, how), value in sorted(self.decisions.items()):
            lines.append(f'largeforge_router_decisions_total{{expert="{expert}",decision="{how}"}} {value}')
        _family(lines, "largeforge_router_upstream_failures_total", "counter", "Failed upstream attempts.")
        for expert, value in sorted(self.upstream_failures.items()):
            lines.append(f'largeforge_router_upstream_failures_total{{expert="{expert}"}} {value}')
        _family(lines, "largeforge_router_fallbacks_total", "counter", "Requests answered by a fallback.")
        for expert, value in sorted(self.fallbacks.items()):
            lines.append(f'largeforge_router_fallbacks_total{{expert="{expert}"}} {value}')
        _family(lines, "largeforge_router_cache_hits_total", "counter", "Answers served from the cache.")
        for (expert, kind), value in sorted(self.cache_hits.items()):
            lines.append(f'largeforge_router_cache_hits_total{{expert="{expert}",kind="{kind}"}} {value}')
        _family(
            lines, "largeforge_router_latency_seconds", "histogram", "Request latency through the router."
        )
        for expert, counts in sorted(self._latency.items()):
            for bound, count in zip(BUCKETS, counts, strict=True):
                lines.append(
                    f'largeforge_router_latency_seconds_bucket{{expert="{expert}",le="{bound}"}} {count}'
                )
            total = self._latency_count[expert]
            lines.append(f'largeforge_router_latency_seconds_bucket{{expert="{expert}",le="+Inf"}} {total}')
            lines.append(
                f'largeforge_router_latency_seconds_sum{{expert="{expert}"}} {self._latency_sum[expert]:.6f}'
            )
            lines.append(f'largeforge_router_latency_seconds_count{{expert="{expert}"}} {total}')
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


__all__ = ["BUCKETS", "RouterMetrics"]
