"""hora's HTTP API: ``create_api(app)`` builds the FastAPI application ``hora serve`` runs."""

from hora.api.server import ApiSettings, create_api

__all__ = ["ApiSettings", "create_api"]
