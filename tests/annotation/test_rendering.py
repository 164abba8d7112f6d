"""Markdown is rendered and sanitised on the server: hostile HTML arrives inert."""
import io

import pytest

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


OVERLAY = (
    '<div class="overlay" id="workbench" style="position:fixed;inset:0;z-index:9999">'
    '<div class="dialog wb-empty"><p>All done</p>'
    '<button class="choice choice--a" data-choice="A">A is better</button>'
    '<a href="https://evil.example/login" class="btn btn--primary" id="x" style="color:red">Sign in again</a>'
    "</div></div>"
)


def test_content_cannot_use_the_apps_classes_ids_or_styles():
    html = render_markdown(OVERLAY)
    lowered = html.lower()
    for forbidden in ("class=", "id=", "style=", "data-", "<button", "z-index", "position"):
        assert forbidden not in lowered, forbidden
    assert "All done" in html and 'href="https://evil.example/login"' in html  # text and the link stay, inert


def test_only_pygments_classes_survive_and_only_on_div_and_span():
    html = render_markdown(
        '<div class="codehilite overlay">x</div> <span class="k nb is-armed pos">y</span> '
        '<code class="choice">z</code> <p class="toast">w</p> <pre class="codehilite">v</pre>'
    )
    assert '<div class="codehilite">x</div>' in html
    assert '<span class="k nb">y</span>' in html
    assert "<code>z</code>" in html and "<p>w</p>" in html and "<pre>v</pre>" in html
    assert render_markdown('<span class="btn">only app classes</span>') == "<p><span>only app classes</span></p>"


def test_highlighted_code_keeps_its_token_classes():
    html = render_markdown("```python\ndef f(x):\n    return x  # done\n```")
    assert '<div class="codehilite">' in html
    for token in ('<span class="k">def</span>', '<span class="nf">f</span>', '<span class="c1"># done</span>'):
        assert token in html, token


@pytest.mark.django_db
def test_html_stored_by_an_older_renderer_is_rendered_again_by_the_command(make_project, annotator):
    from django.core.management import call_command

    from annotation.models import Prompt, Response
    from annotation.selectors import assignment_payload
    from annotation.assignment import assignment_claim_next

    project = make_project(annotators=[annotator], prompts=2)
    other = make_project(name="Other", prompts=1)
    # What an older, laxer sanitiser might have stored.
    stale = '<img src=x onerror="alert(1)">'
    Response.objects.update(html=stale)
    Prompt.objects.update(conversation_html=[stale])

    call_command("render_markdown", "--project", project.name, stdout=io.StringIO())
    for response in Response.objects.filter(prompt__project=project):
        assert response.html == render_markdown(response.text)
    assert Response.objects.filter(prompt__project=other, html=stale).count() == 2  # left alone

    call_command("render_markdown", stdout=io.StringIO())
    assert not Response.objects.filter(html=stale).exists()
    assert not Prompt.objects.filter(conversation_html=[stale]).exists()
    payload = assignment_payload(assignment_claim_next(project=project, annotator=annotator))
    assert "onerror" not in str(payload) and payload["responses"][0]["html"].startswith("<p>")
