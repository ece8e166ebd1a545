from urllib.parse import parse_qs, urlsplit

from pipeline.links import (
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
        base_url="https://user:sk-secret@gpu.example.org:8000/v1?api_key=sk-other#frag",
        system_prompt="Valio amin'ny teny malagasy.",
    )
    shared = choices_from_session(session)
    assert shared == SharedChoices(
        language="plt",
        model="org/model",
        system_prompt="Valio amin'ny teny malagasy.",
        backend="openai",
        base_url="https://gpu.example.org:8000/v1",
        provider="auto",
    )
    link = build_link("http://h/", shared)
    assert "secret" not in link and "sk-other" not in link and "user" not in link  # never a key
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["backend"] == "openai" and query["base_url"] == "https://gpu.example.org:8000/v1"
    assert parse_link_params(query).where() == "an OpenAI-compatible server at https://gpu.example.org:8000/v1"


def test_a_link_to_a_private_address_is_refused_on_a_public_deployment(monkeypatch):
    query = {"language": "nld", "model": "m", "backend": "openai", "base_url": "http://127.0.0.1:8080/v1"}
    assert parse_link_params(query).base_url == "http://127.0.0.1:8080/v1"  # run locally: allowed
    monkeypatch.setenv("SYSTEM", "spaces")
    shared = parse_link_params(query)
    assert shared.backend == "" and shared.base_url == "" and shared.model == "m" and shared.language == "nld"
    assert "127.0.0.1" in shared.refused and "loopback" in shared.refused.lower()
    metadata = parse_link_params({**query, "base_url": "http://169.254.169.254/latest"})
    assert metadata.base_url == "" and metadata.refused
    # a serverless link names its provider; a base URL is not taken for it
    sl = parse_link_params({"model": "m", "backend": "serverless", "provider": "together", "base_url": "http://x/"})
    assert (sl.backend, sl.provider, sl.base_url, sl.refused) == ("serverless", "together", "", "")


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
    from pipeline.links import missing_choices

    assert missing_choices(SharedChoices(language="nld", model="m", system_prompt="p")) == []
    assert missing_choices(SharedChoices(language="nld")) == ["a model", "a system prompt"]
    long_prompt = "x" * (MAX_SYSTEM_PROMPT_CHARS + 1)
    assert "too long" in missing_choices(SharedChoices(language="nld", model="m", system_prompt=long_prompt))[0]


def _plain(markdown: str) -> str:
    """Escaped Markdown as the text people read."""
    import html

    return html.unescape(markdown).replace("\\", "").replace("**", "")


def test_a_link_fills_the_playground_choice_and_the_pipeline_tab_and_says_what_it_carries(monkeypatch):
    """Opened from a link that names a model on a server: the session's model choice (what the Pipeline tab
    prefills from) has the model, where it runs and the system prompt; the banner says so; the share box of that
    session makes the same link and says honestly what it carries."""
    from types import SimpleNamespace

    import app
    from ui import pipeline_tab
    from ui.session import Session

    query = {
        "language": "nld",
        "model": "model-a",
        "backend": "openai",
        "base_url": "https://gpu.example.org/v1",
        "system_prompt": "Antwoord in het Nederlands.",
    }
    session = Session()
    banner = app.open_link(session, SimpleNamespace(query_params=query, url="http://127.0.0.1:7860/"))["banner"]
    shown = _plain(banner["value"])
    assert "model model-a on an OpenAI-compatible server at https://gpu.example.org/v1" in shown
    assert "3. Pipeline" in shown
    choice = session.model_choice
    assert (choice.model, choice.backend, choice.base_url) == ("model-a", "openai", "https://gpu.example.org/v1")
    out = pipeline_tab.on_select(session, {"models": "", "system_prompt": "", "repo": "", "judge_model": ""})
    assert out["models"]["value"] == "model-a" and out["kind"]["value"] == "openai"
    assert out["base_url"]["value"] == "https://gpu.example.org/v1"
    assert out["system_prompt"]["value"] == "Antwoord in het Nederlands."
    assert out["judge_kind"]["value"] == "openai"  # the empty judge shows the same server

    session.filtered = SimpleNamespace(language_code="nld", source=SimpleNamespace(short_name="demo"))
    shared = app.share_link(session, SimpleNamespace(url="http://127.0.0.1:7860/x"))
    query_back = {k: v[0] for k, v in parse_qs(urlsplit(shared["link"]).query).items()}
    assert query_back == {**query, "source": "demo"}
    assert "on an OpenAI-compatible server at https://gpu.example.org/v1" in _plain(shared["note"])
    assert "No API key travels" in shared["note"]

    # on a public deployment, a link to a private address is refused with the reason, and the model stays serverless
    monkeypatch.setenv("SYSTEM", "spaces")
    other = Session()
    private = {**query, "base_url": "http://10.0.0.5:8000/v1"}
    banner = app.open_link(other, SimpleNamespace(query_params=private, url="https://x.hf.space/"))["banner"]
    assert "The link's server was not used" in banner["value"] and "10.0.0.5" in _plain(banner["value"])
    assert other.model_choice.backend == "serverless" and other.model_choice.base_url == ""
