"""The web dashboard, served at the root beside the API (docs/dashboard.md): server-rendered pages
(Jinja2 templates in templates/), inline SVG charts, and a little script in static/ for the
playground's stream. Nothing is fetched from anywhere but this server."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from omnirouter.dashboard import actions, pages

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [
        Route("/", pages.overview, methods=["GET"]),
        Route("/login", actions.login_form, methods=["GET"]),
        Route("/login", actions.login, methods=["POST"]),
        Route("/logout", actions.logout, methods=["POST"]),
        Route("/generations", pages.generations, methods=["GET"]),
        Route("/generations/{id}", pages.generation, methods=["GET"]),
        Route("/keys", pages.keys, methods=["GET"]),
        Route("/keys", actions.create_key, methods=["POST"]),
        Route("/keys/{hash}", actions.update_key, methods=["POST"]),
        Route("/keys/{hash}/rotate", actions.rotate_key, methods=["POST"]),
        Route("/providers", pages.providers, methods=["GET"]),
        Route("/models", pages.models, methods=["GET"]),
        Route("/credits", pages.credits, methods=["GET"]),
        Route("/playground", pages.playground, methods=["GET"]),
        Route("/playground/key", actions.playground_key, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
