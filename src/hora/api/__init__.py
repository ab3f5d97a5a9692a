"""hora's HTTP API: ``create_api(app)`` builds the FastAPI application ``hora serve`` runs."""

from hora.api.app import create_api
from hora.api.deps import ApiSettings

__all__ = ["ApiSettings", "create_api"]
