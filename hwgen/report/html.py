"""The jinja2 environment of the HTML pages (``templates/html/*.html.j2``): autoescaped, StrictUndefined.

Charts arrive as SVG text from :mod:`hwgen.report.charts` and are marked safe
(:func:`markupsafe.Markup`) by the page functions, everything else is escaped.
Filters: ``num`` (thousands separators, ``-`` for None), ``fixed(n)``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from hwgen import __version__
from hwgen.synth.scripts import TEMPLATE_DIR

__all__ = ["HTML_TEMPLATE_DIR", "fixed", "num", "render_page", "write_page"]

HTML_TEMPLATE_DIR = TEMPLATE_DIR / "html"


def num(value) -> str:
    """An integer or float with thousands separators (floats: no decimals); ``-`` for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}"


def fixed(value, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and thousands separators; ``-`` for None."""
    return "-" if value is None else f"{value:,.{digits}f}"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HTML_TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = num
    env.filters["fixed"] = fixed
    return env


def render_page(template: str, context: dict) -> str:
    """``templates/html/<template>`` rendered with ``context`` (plus ``hwgen_version``)."""
    return _environment().get_template(template).render(hwgen_version=__version__, **context)


def write_page(path: Path, template: str, context: dict) -> Path:
    """Render ``template`` and write it to ``path`` through a temporary file, so a reader never sees half a page."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_page(template, context))
    tmp.replace(path)
    return path
