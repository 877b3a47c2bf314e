"""The API manual at /docs: Swagger UI from the service itself, never from a CDN.

FastAPI's own /docs loads Swagger UI from cdn.jsdelivr.net, which left a blank page wherever the
service cannot reach the internet (a cluster, a laptop offline). The files are vendored in
app/vendor/swagger-ui (its README says which release) and served at /docs/assets/.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI = Path(__file__).parent.parent / "vendor" / "swagger-ui"
ASSETS = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# no validator badge: Swagger UI would fetch it from validator.swagger.io
SWAGGER_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Attention service — API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url="data:,",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def mount_docs(app: FastAPI) -> None:
    """/docs and its assets; FastAPI's own (CDN) /docs and /redoc are switched off."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI, check_dir=False), name="docs-assets")
    app.include_router(router)
