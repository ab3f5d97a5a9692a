"""``/docs`` (Swagger UI) and ``/redoc``, served with their assets by hora itself.

FastAPI's default pages load their JavaScript and CSS from a public CDN, so on a machine
without internet they stay blank. The assets come instead from the ``fastapi-offline``
package (Swagger UI's and ReDoc's released bundles and FastAPI's favicon, under their MIT
and Apache-2.0 licences), a dependency of hora, and are served under ``/docs/static/``.
The pages reference nothing outside the server: no CDN, no web fonts. Like
``/openapi.json`` they need no API key: they describe the API, not anyone's data.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
#: The package and its directory holding ``swagger-ui-bundle.js``, ``swagger-ui.css``,
#: ``redoc.standalone.js`` and ``favicon.png``.
ASSETS = ("fastapi_offline", "static")


def install(api: FastAPI) -> None:
    """Add the two pages and the asset mount to ``api`` (created with ``docs_url=None`` and
    ``redoc_url=None``, so FastAPI's CDN pages are not there too)."""
    api.mount(STATIC_URL, StaticFiles(packages=[ASSETS]), name="docs-static")

    def base(request: Request) -> str:
        # Behind a proxy that mounts hora under a prefix, the URLs keep the prefix.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @api.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}", title=f"{api.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=api.swagger_ui_parameters)

    @api.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @api.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{api.openapi_url}", title=f"{api.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png", with_google_fonts=False)
