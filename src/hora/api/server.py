"""The HTTP API's names as they were importable before it was split by resource:
``create_api`` and ``ApiSettings`` (``hora serve``), ``router`` and ``_idempotency`` (tests).

The application lives in ``hora.api.app``, the dependencies in ``hora.api.deps`` and the
routes in ``hora.api.routes``; import from there in new code.
"""

from __future__ import annotations

from hora.api.app import create_api
from hora.api.deps import ApiContext, ApiSettings, _idempotency
from hora.api.routes import router

__all__ = ["ApiContext", "ApiSettings", "_idempotency", "create_api", "router"]
