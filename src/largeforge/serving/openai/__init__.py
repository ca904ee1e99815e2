"""The OpenAI-compatible HTTP API: wire types and routes."""
