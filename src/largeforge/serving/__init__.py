"""Serving: an OpenAI-compatible HTTP server in front of an inference engine."""
