"""FastAPI app: SMS webhooks, JSON API, dashboard."""
