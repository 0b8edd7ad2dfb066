"""The web UI: server-rendered pages (Jinja2 + htmx + uPlot)."""

__all__: list[str] = []
