from urllib.parse import parse_qs, urlsplit

from pipeline.links import MAX_SYSTEM_PROMPT_CHARS, SharedChoices, build_link, parse_link_params


def test_round_trip_keeps_every_choice():
    choices = SharedChoices(language="nld", model="Qwen/Qwen2.5-7B-Instruct", system_prompt="Antwoord in het {language}.\nAltijd!")
    link = build_link("https://me-dpo-studio.hf.space/?__theme=dark", choices)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert "__theme" not in query
    assert parse_link_params(query) == choices


def test_empty_choices_give_a_bare_link():
    assert build_link("http://127.0.0.1:7860", SharedChoices()) == "http://127.0.0.1:7860/"


def test_long_system_prompt_is_left_out_of_the_link_and_ignored_when_read():
    long_prompt = "x" * (MAX_SYSTEM_PROMPT_CHARS + 1)
    link = build_link("http://h/", SharedChoices(language="yor", system_prompt=long_prompt))
    assert "system_prompt" not in link
    assert parse_link_params({"system_prompt": long_prompt, "language": "yor"}) == SharedChoices(language="yor")


def test_unknown_params_are_ignored_and_values_trimmed():
    assert parse_link_params({"language": " spa ", "token": "hf_secret"}) == SharedChoices(language="spa")
