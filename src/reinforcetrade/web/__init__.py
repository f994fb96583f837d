"""The web side: Prometheus metrics (the API and dashboard come next)."""
