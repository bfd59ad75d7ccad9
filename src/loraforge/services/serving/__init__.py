"""Serving: the chat gateway, deployments (the inference worker manager) and external providers."""
