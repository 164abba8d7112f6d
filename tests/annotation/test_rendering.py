"""Markdown is rendered and sanitised on the server: hostile HTML arrives inert."""
from annotation.rendering import render_markdown


def test_markdown_renders_lists_tables_and_highlighted_code():
    html = render_markdown("- **bold** item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```")
    assert "<strong>bold</strong>" in html and "<table>" in html
    assert '<div class="codehilite">' in html and '<span class="nb">print</span>' in html


def test_script_tags_event_handlers_and_javascript_links_are_removed():
    html = render_markdown(
        "<script>alert(1)</script> <img src=x onerror=\"alert(2)\"> "
        "[click](javascript:alert(3)) <a href=\"JaVaScRiPt:alert(4)\">x</a> <iframe src=//evil></iframe>"
    )
    lowered = html.lower()
    for forbidden in ("<script", "onerror", "javascript:", "<iframe", "<img"):
        assert forbidden not in lowered, forbidden


def test_links_get_safe_rel():
    assert 'rel="noopener noreferrer nofollow"' in render_markdown("[docs](https://example.org)")
