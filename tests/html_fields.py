"""Reading the HTML pages of hwgen in tests: the text of ``data-field`` elements and the SVG charts."""

from __future__ import annotations

from html.parser import HTMLParser


class Fields(HTMLParser):
    """Text of the elements carrying ``data-field``, keyed ``FIELD`` or ``FIELD:QUALIFIER`` (the element's
    data-layer / data-resource / data-criterion, or the data-point of its table row), and the ``<path>``
    count of each ``<svg>`` element."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.svgs: list[int] = []
        self._open: list[str] = []
        self._row: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self._row = a.get("data-point")
        if tag == "svg":
            self.svgs.append(0)
        elif tag == "path" and self.svgs:
            self.svgs[-1] += 1
        if "data-field" in a:
            qualifiers = [a[k] for k in ("data-layer", "data-resource", "data-criterion") if k in a]
            key = ":".join([a["data-field"], *qualifiers, *([self._row] if self._row else [])])
            self._open.append(key)
            self.fields[key] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "div", "span") and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.fields[self._open[-1]] += data.strip()


def number(text: str) -> float:
    """A number as the pages print it (thousands separators)."""
    return float(text.replace(",", ""))
