"""Markdown to safe HTML, on the server.

Responses are model output and imports are user data: both are untrusted. The
HTML is produced by Python-Markdown and then sanitised by nh3 (ammonia) with an
allow-list, so ``<script>``, event-handler attributes and ``javascript:`` links
arrive in the browser inert.
"""
import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "u", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
    "th", "td", "a", "span", "div", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "th": {"align"},
    "td": {"align"},
}
MARKDOWN_EXTENSIONS = ["fenced_code", "codehilite", "tables", "sane_lists", "nl2br"]
# Code blocks are highlighted on the server by Pygments into <span class="..."> tokens
# (styled by frontend/static/frontend/pygments.css), so the browser runs no highlighter.
MARKDOWN_CONFIG = {"codehilite": {"guess_lang": False, "css_class": "codehilite"}}


def render_markdown(text: str) -> str:
    html = markdown.markdown(
        text or "", extensions=MARKDOWN_EXTENSIONS, extension_configs=MARKDOWN_CONFIG, output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
