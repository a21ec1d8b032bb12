"""Shared domain and adapters of the text-to-video pipeline (shipped as the Lambda layer)."""
