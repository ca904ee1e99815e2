"""The expert router: many models behind one OpenAI-compatible endpoint, chosen per request.

Layout: :mod:`.config` (the YAML), :mod:`.classifiers` (keyword, embedding, hybrid, learned),
:mod:`.replicas` (balancing, health), :mod:`.proxy` (retries, fallbacks, streaming), :mod:`.cache`,
:mod:`.decisions` (the JSON-lines log), :mod:`.learning` (``router train``), :mod:`.service` (the use
cases), :mod:`.routes` + :mod:`.app` (HTTP). Heavy pieces (the embedding model, FastAPI) load lazily.
"""

from __future__ import annotations

from largeforge.routing.config import RouterConfig, load_router_config, parse_router_config

__all__ = ["RouterConfig", "load_router_config", "parse_router_config"]
