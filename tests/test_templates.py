"""pipeline.playground.templates: the system prompt library."""

from __future__ import annotations

from pipeline.playground import templates
from pipeline.playground.templates import render, templates_for


def test_render_fills_language_and_keeps_other_braces():
    text = render("Always answer in {language}. Use {curly} and {{x}} as written. {language}!", "Dutch")
    assert text == "Always answer in Dutch. Use {curly} and {{x}} as written. Dutch!"


def test_generic_templates_have_the_placeholder():
    assert templates.GENERIC
    for template in templates.GENERIC:
        assert "{language}" in template.text
        assert "{language}" not in render(template.text, "Swahili")
        assert "Swahili" in render(template.text, "Swahili")


def test_dutch_recipe_prompt_comes_first_for_dutch():
    dutch = templates_for("nld")
    assert dutch[0].language == "nld"
    assert "Nederlands" in dutch[0].text and "behulpzame" in dutch[0].text
    assert dutch[1:] == list(templates.GENERIC)
    assert templates.default_prompt("nld", "Dutch") == dutch[0].text


def test_languages_without_own_template_get_the_generic_ones():
    assert templates_for("som") == list(templates.GENERIC)
    assert templates_for(None) == list(templates.GENERIC)
    assert "Somali" in templates.default_prompt("som", "Somali")


def test_demo_languages_have_templates_and_names_are_unique():
    for code in ("nld", "spa", "fra", "deu", "arb", "rus", "hin", "jpn", "plt", "yor", "swh"):
        assert templates_for(code)[0].language == code, code
    names = [t.name for t in templates.TEMPLATES]
    assert len(names) == len(set(names))
    assert templates.get(names[0]) is templates.TEMPLATES[0]
    assert templates.get("no such template") is None
