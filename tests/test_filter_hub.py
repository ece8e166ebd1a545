"""The Filter step end to end through the real huggingface_hub/datasets clients and the fake Hub:
load Aya (an Aya-shaped copy of the demo rows at CohereForAI/aya_dataset), filter, push, load back, compare."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest

from pipeline.core import hub
from pipeline.filter import filtered, sources


def _name(prefix: str = "aya") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


AYA_CARD = "---\nlicense: apache-2.0\nlanguage:\n- multilingual\n---\n# Aya (test copy)\n"


def demo_raw() -> pa.Table:
    rows = [json.loads(line) for line in sources.DEMO_FILE.read_text(encoding="utf-8").splitlines()]
    return pa.Table.from_pylist(rows)


@pytest.fixture()
def hubdata(fake_hub):
    sources.clear_cache()
    fake_hub.add_user("alice", "hf_alice", orgs=["langcommunity"])
    fake_hub.add_user("bob", "hf_bob")
    fake_hub.add_dataset(sources.AYA_ID, demo_raw(), card=AYA_CARD)
    yield fake_hub
    sources.clear_cache()


def test_load_aya_filter_push_and_load_back(hubdata):
    import datasets

    src = sources.load_source(sources.SourceSpec.aya(), token=None)
    assert not src.info.is_demo and src.info.dataset_id == sources.AYA_ID and src.info.license == "apache-2.0"
    fs = filtered.filter_source(src, filtered.FilterSpec(language="Dutch", min_response_chars=60))
    assert fs.rows > 10 and fs.language_code == "nld"
    repo = f"alice/{_name()}"
    url = filtered.push_filtered(fs, repo, "hf_alice", private=True)
    assert url.endswith(f"/datasets/{repo}") and fs.pushed_to == repo
    back = datasets.load_dataset(repo, split="train", token="hf_alice")
    assert back.column_names == list(fs.table.column_names)
    assert back.to_list() == fs.table.to_pylist()
    card = hubdata.read_text(repo, "README.md")
    assert "- nl" in card and f"source_datasets:\n- {sources.AYA_ID}" in card
    assert f"Rows: **{fs.rows}**" in card and "response length at least 60 characters" in card
    assert f'load_dataset("{repo}"' in card
    assert hubdata.repo(repo).private


def test_source_is_loaded_once_and_shared(hubdata):
    a = sources.load_source(sources.SourceSpec.aya(), token="hf_alice")
    before = len(hubdata.requests)
    b = sources.load_source(sources.SourceSpec.aya(), token="hf_bob")
    c = sources.load_source(sources.SourceSpec.aya(), token=None)
    assert a is b is c  # one read-only copy per process
    assert hubdata.requests[before:] == []  # public: served from the cache without asking the Hub


def test_private_source_is_not_served_to_other_users(hubdata):
    repo = f"langcommunity/{_name('private')}"
    hubdata.add_dataset(repo, pa.table({"prompt": ["Hoi", "Dag"], "response": ["Hallo", "Doei"]}), private=True)
    spec = sources.SourceSpec.hub_dataset(repo, language="nl")
    mine = sources.load_source(spec, "hf_alice")
    assert mine.table.num_rows == 2
    for token in ("hf_bob", None):
        with pytest.raises(hub.HubError, match="not found"):
            sources.load_source(spec, token)
    assert sources.load_source(spec, "hf_alice") is mine


def test_gated_source(hubdata):
    repo = f"gatedorg/{_name('gated')}"
    hubdata.add_dataset(repo, pa.table({"prompt": ["Hoi"], "response": ["Hallo"]}), gated="manual", granted=["bob"])
    spec = sources.SourceSpec.hub_dataset(repo, language="nl")
    with pytest.raises(hub.HubError, match="gated dataset: sign in"):
        sources.load_source(spec, None)
    with pytest.raises(hub.HubError, match="request access at"):
        sources.load_source(spec, "hf_alice")
    assert sources.load_source(spec, "hf_bob").table.num_rows == 1
    with pytest.raises(hub.HubError, match="request access at"):  # cached now, still refused
        sources.load_source(spec, "hf_alice")


def test_any_dataset_with_a_column_mapping(hubdata):
    repo = f"someone/{_name('qa')}"
    table = pa.table(
        {
            "question": ["Habari?", "Hello?", "Jina lako nani?"],
            "answer": ["Nzuri", "Hi", "Amina"],
            "lang": ["sw", "en", "swahili"],
        }
    )
    hubdata.add_dataset(repo, table)
    bad = sources.SourceSpec.hub_dataset(repo, prompt_col="prompt", response_col="answer", language_col="lang")
    with pytest.raises(
        sources.DataError, match="no column 'prompt' for the prompt. Its columns are: question, answer, lang"
    ):
        sources.load_source(bad, None)
    before = len(hubdata.requests)
    good = sources.SourceSpec.hub_dataset(repo, prompt_col="question", response_col="answer", language_col="lang")
    src = sources.load_source(good, None)
    assert not any("/resolve/" in path for _, path, _ in hubdata.requests[before:])  # no second download
    fs = filtered.filter_source(src, filtered.FilterSpec(language="Swahili"))
    assert fs.table["prompt"].to_pylist() == ["Habari?", "Jina lako nani?"]
    assert fs.default_repo_name("alice") == f"alice/{repo.split('/')[1]}-swa"  # sw → ISO 639-3 swa


def test_dataset_not_found_and_bad_split(hubdata):
    with pytest.raises(hub.HubError, match="was not found"):
        sources.load_source(sources.SourceSpec.hub_dataset("nobody/nothing", language="nl"), "hf_alice")
    with pytest.raises(hub.HubError, match="has no split 'test'"):
        sources.load_source(sources.SourceSpec(split="test"), None)


def test_hub_unreachable_falls_back_to_demo_and_says_so(hubdata):
    with hubdata.unreachable():
        src = sources.load_source(sources.SourceSpec.aya(), None)
        assert src.info.is_demo
        assert "Could not reach the Hugging Face Hub" in src.info.note and "demo data" in src.info.note
        with pytest.raises(hub.HubUnreachable):
            sources.load_source(sources.SourceSpec.aya(), None, fallback_to_demo=False)


def test_push_refusals_before_any_hub_call(hubdata):
    src = sources.load_source(sources.SourceSpec.aya(), None)
    empty = filtered.filter_source(src, filtered.FilterSpec(language="nl", min_prompt_chars=100_000))
    assert empty.rows == 0
    before = len(hubdata.requests)
    with pytest.raises(sources.DataError, match="0 rows"):
        filtered.push_filtered(empty, "alice/empty", "hf_alice", private=False)
    fs = filtered.filter_source(src, filtered.FilterSpec(language="nl"))
    with pytest.raises(hub.HubError, match="not a valid repo name"):
        filtered.push_filtered(fs, "alice/bad name", "hf_alice", private=False)
    assert hubdata.requests[before:] == []


def test_existing_repo_needs_overwrite(hubdata):
    src = sources.load_source(sources.SourceSpec.aya(), None)
    fs = filtered.filter_source(src, filtered.FilterSpec(language="fr"))
    repo = f"alice/{_name()}"
    filtered.push_filtered(fs, repo, "hf_alice", private=False)
    smaller = filtered.filter_source(src, filtered.FilterSpec(language="fr", sample=3))
    with pytest.raises(hub.HubError, match="already exists.*new name, or tick overwrite"):
        filtered.push_filtered(smaller, repo, "hf_alice", private=False)
    assert hubdata.read_table(repo).num_rows == fs.rows
    filtered.push_filtered(smaller, repo, "hf_alice", private=False, overwrite=True)
    assert hubdata.read_table(repo).num_rows == 3
