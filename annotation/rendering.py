"""Markdown to safe HTML, on the server.

Responses are model output and imports are user data: both are untrusted. The
HTML is produced by Python-Markdown and then sanitised by nh3 (ammonia) with an
allow-list, so ``<script>``, event-handler attributes and ``javascript:`` links
arrive in the browser inert.

Content must not be able to draw the app's own UI either (a ``<div class="overlay">``
would otherwise pick up the workbench's full-viewport dialog styles). So no ``id`` and no
``style`` survive, and the only classes kept are the ones Pygments code highlighting
emits: ``codehilite`` on the wrapping ``div`` and the short token classes on ``span``.
None of those names is used by the app's stylesheets, and pygments.css scopes every token
rule under ``.codehilite``. The rendered-content container (``.md`` in app.css) also
establishes containment, so even a class that slipped through cannot cover the page.
"""
import markdown
import nh3
from pygments.token import STANDARD_TYPES

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "u", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
    "th", "td", "a", "span", "div", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "th": {"align"},
    "td": {"align"},
}
MARKDOWN_EXTENSIONS = ["fenced_code", "codehilite", "tables", "sane_lists", "nl2br"]
# Code blocks are highlighted on the server by Pygments into <span class="..."> tokens
# (styled by frontend/static/frontend/pygments.css), so the browser runs no highlighter.
CODEHILITE_CLASS = "codehilite"
MARKDOWN_CONFIG = {"codehilite": {"guess_lang": False, "css_class": CODEHILITE_CLASS}}
# The classes each tag may keep; any other class is dropped.
ALLOWED_CLASSES = {
    "div": frozenset({CODEHILITE_CLASS}),
    "span": frozenset(name for name in STANDARD_TYPES.values() if name) | {"hll"},
}


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute != "class":
        return value
    kept = [name for name in value.split() if name in ALLOWED_CLASSES.get(tag, ())]
    return " ".join(kept) or None


def render_markdown(text: str) -> str:
    html = markdown.markdown(
        text or "", extensions=MARKDOWN_EXTENSIONS, extension_configs=MARKDOWN_CONFIG, output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
