from urllib.parse import parse_qs, urlsplit

from pipeline.core.links import (
    MAX_SYSTEM_PROMPT_CHARS,
    SharedChoices,
    build_link,
    choices_from_session,
    parse_link_params,
    public_base_url,
)


def test_round_trip_keeps_every_choice():
    choices = SharedChoices(
        language="nld", model="Qwen/Qwen2.5-7B-Instruct", system_prompt="Antwoord in het {language}.\nAltijd!"
    )
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


def test_choices_from_session_use_the_filtered_language_and_the_chosen_model():
    from ui.session import ModelChoice, Session

    class Filtered:
        language_code = "plt"

    session = Session()
    assert choices_from_session(session).is_empty()
    session.filtered = Filtered()
    session.model_choice = ModelChoice(
        model="org/model",
        backend="openai",
        base_url="http://secret-host:8000/v1",
        system_prompt="Valio amin'ny teny malagasy.",
    )
    shared = choices_from_session(session)
    assert shared == SharedChoices(language="plt", model="org/model", system_prompt="Valio amin'ny teny malagasy.")
    assert "secret-host" not in build_link("http://h/", shared)  # a backend URL never travels in a link


def test_public_base_url_prefers_the_space_host():
    assert public_base_url("http://127.0.0.1:7860/gradio_api/queue/join") == "http://127.0.0.1:7860/"
    assert public_base_url("http://0.0.0.0:7860/", "a-b.hf.space") == "https://a-b.hf.space/"


def test_the_source_travels_only_for_the_built_in_sources():
    from ui.session import ModelChoice, Session

    class Info:
        def __init__(self, short_name):
            self.short_name = short_name

    class Filtered:
        language_code = "nld"

        def __init__(self, short_name):
            self.source = Info(short_name)

    session = Session()
    session.model_choice = ModelChoice(model="org/m", backend="serverless", system_prompt="Antwoord in het Nederlands.")
    for short_name, expected in (("demo", "demo"), ("aya", "aya"), ("my-private-set", "")):
        session.filtered = Filtered(short_name)
        shared = choices_from_session(session)
        assert shared.source == expected
        query = parse_qs(urlsplit(build_link("http://h/", shared)).query)
        assert query.get("source", [""])[0] == expected
        assert "my-private-set" not in build_link("http://h/", shared)
    assert parse_link_params({"source": "evil/private"}).source == ""
    assert parse_link_params({"source": " Demo "}).source == "demo"


def test_missing_choices_say_what_a_link_will_not_carry():
    from pipeline.core.links import missing_choices

    assert missing_choices(SharedChoices(language="nld", model="m", system_prompt="p")) == []
    assert missing_choices(SharedChoices(language="nld")) == ["a model", "a system prompt"]
    long_prompt = "x" * (MAX_SYSTEM_PROMPT_CHARS + 1)
    assert "too long" in missing_choices(SharedChoices(language="nld", model="m", system_prompt=long_prompt))[0]
