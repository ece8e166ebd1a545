"""pipeline.core.hub through the real huggingface_hub/datasets clients against the fake Hub."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from pipeline.core import hub


def _name(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def users(fake_hub):
    fake_hub.add_user("alice", "hf_alice", orgs={"langcommunity": "write", "readonlyorg": "read"})
    fake_hub.add_user("bob", "hf_bob")
    fake_hub.add_user("carol", "hf_carol_ro", read_only=True)
    return fake_hub


TABLE = pa.table(
    {"prompt": ["Hoi", "Wat is 2+2?", "Здравствуй"], "response": ["Hallo!", "4", "Привет"], "n": [1, 2, 3]}
)


def test_whoami_lists_writable_orgs(users):
    me = hub.whoami("hf_alice")
    assert me.name == "alice" and me.orgs == ["langcommunity"] and me.can_write
    assert me.namespaces == ["alice", "langcommunity"]
    assert hub.whoami("hf_carol_ro").can_write is False
    with pytest.raises(hub.HubError, match="refused the token"):
        hub.whoami("hf_wrong")
    with pytest.raises(hub.HubError, match="signed in"):
        hub.whoami("")


@pytest.mark.parametrize(
    "repo_id,message",
    [
        ("", "Enter a repo name"),
        ("noslash", "use 'owner/name'"),
        ("a/b/c", "use 'owner/name'"),
        ("alice/has space", "may only use letters"),
        ("alice/-dash", "start and end with a letter or digit"),
        ("alice/a--b", "may not contain '--'"),
        ("alice/x.git", "may not end with '.git'"),
        ("alice/" + "x" * 97, "longer than 96"),
        ("ällice/data", "may only use letters"),
    ],
)
def test_invalid_repo_names_are_refused_before_any_hub_call(users, repo_id, message):
    before = len(users.requests)
    with pytest.raises(hub.HubError, match=message):
        hub.validate_repo_id(repo_id)
    with pytest.raises(hub.HubError, match=message):
        hub.push_dataset(TABLE, repo_id, "hf_alice", private=False, card="# x")
    assert users.requests[before:] == []


def test_validate_repo_id_cleans():
    assert hub.validate_repo_id("  alice/aya-nld ") == "alice/aya-nld"
    assert hub.validate_repo_id("https://huggingface.co/datasets/alice/aya-nld") == "alice/aya-nld"


def test_check_writable(users):
    assert hub.check_writable("alice/x", "hf_alice").name == "alice"
    hub.check_writable("langcommunity/x", "hf_alice")
    for repo_id, token, message in (
        ("bob/x", "hf_alice", "cannot write to 'bob'.*'alice/…', 'langcommunity/…'"),
        ("readonlyorg/x", "hf_alice", "cannot write to 'readonlyorg'"),
        ("carol/x", "hf_carol_ro", "read-only"),
        ("alice/x", None, "signed in"),
    ):
        with pytest.raises(hub.HubError, match=message):
            hub.check_writable(repo_id, token)


def test_push_and_load_back_with_datasets(users):
    import datasets

    repo = f"alice/{_name()}"
    card = hub.render_card({"license": "apache-2.0", "language": ["nl"], "tags": ["dpo-studio"]}, "# My set\n\nHi.")
    url = hub.push_dataset(
        {"train": TABLE, "raw": TABLE.slice(0, 2)},
        repo,
        "hf_alice",
        private=True,
        card=card,
        extra_files={"meta/run.json": '{"a": 1}'},
    )
    assert url == f"{users.url}/datasets/{repo}"
    r = users.repo(repo)
    assert r.private
    assert len(users.commits(repo)) == 2  # repo creation + ONE commit with everything
    files = users.files(repo)
    assert set(files) == {
        ".gitattributes",
        "README.md",
        "meta/run.json",
        "data/train-00000-of-00001.parquet",
        "data/raw-00000-of-00001.parquet",
    }
    readme = files["README.md"].decode()
    assert "license: apache-2.0" in readme and "# My set" in readme and "split: raw" in readme
    back = datasets.load_dataset(repo, split="train", token="hf_alice")
    assert back.to_dict() == TABLE.to_pydict()
    assert hub.load_dataset_table(repo, "raw", "hf_alice").to_pydict() == TABLE.slice(0, 2).to_pydict()
    assert hub.download_file(repo, "meta/run.json", "hf_alice") == b'{"a": 1}'
    assert "meta/run.json" in hub.list_files(repo, "hf_alice")


def test_existing_repo_asks_for_new_name_or_overwrite(users):
    repo = f"alice/{_name()}"
    hub.push_dataset(TABLE, repo, "hf_alice", private=False, card="# v1")
    n = len(users.commits(repo))
    with pytest.raises(hub.HubError, match="already exists.*pick a new name, or tick overwrite"):
        hub.push_dataset(TABLE.slice(0, 1), repo, "hf_alice", private=False, card="# v2")
    assert len(users.commits(repo)) == n and users.read_table(repo).num_rows == 3
    hub.push_dataset({"test": TABLE.slice(0, 1)}, repo, "hf_alice", private=True, card="# v2", overwrite=True)
    files = users.files(repo)
    assert "data/train-00000-of-00001.parquet" not in files  # old split replaced, not mixed in
    assert users.read_table(repo, "test").num_rows == 1
    assert users.repo(repo).private
    assert "# v2" in files["README.md"].decode()


def test_push_refusals_write_nothing(users):
    for repo, token in (
        (f"bob/{_name()}", "hf_alice"),
        (f"alice/{_name()}", None),
        (f"carol/{_name()}", "hf_carol_ro"),
    ):
        with pytest.raises(hub.HubError):
            hub.push_dataset(TABLE, repo, token, private=False, card="# x")
        assert not users.exists(repo)
    with pytest.raises(hub.HubError, match="not a valid split name"):
        hub.push_dataset({"bad split": TABLE}, f"alice/{_name()}", "hf_alice", private=False, card="# x")


def test_failed_commit_leaves_no_empty_repo(users):
    repo = f"alice/{_name()}"
    users.fail_next("POST", rf"/api/datasets/{repo}/commit/", status=500)
    with pytest.raises(hub.HubUnreachable, match=r"had a problem \(HTTP 500\) while trying to upload the dataset"):
        hub.push_dataset(TABLE, repo, "hf_alice", private=False, card="# x")
    assert not users.exists(repo)
    with pytest.raises(hub.HubError, match="not valid YAML"):
        hub.push_dataset(TABLE, repo, "hf_alice", private=False, card="---\nlicense: [unclosed\n---\n# x")
    assert not users.exists(repo)


def test_load_errors_say_what_to_do(users):
    users.add_dataset("langcommunity/private-set", TABLE, private=True)
    users.add_dataset("gatedorg/gated-set", TABLE, gated="manual", granted=["bob"])
    cases = [
        ("nobody/missing", "hf_alice", "was not found, or your account cannot see it"),
        ("nobody/missing", None, "was not found.*if it is private, sign in"),
        ("langcommunity/private-set", "hf_bob", "was not found, or your account cannot see it"),
        ("langcommunity/private-set", None, "if it is private, sign in"),
        ("gatedorg/gated-set", None, "gated dataset: sign in with a Hugging Face account that has access"),
        ("gatedorg/gated-set", "hf_alice", "gated dataset and your account has no access yet: request access at"),
        ("not a repo", None, "not a valid repo name"),
    ]
    for dataset_id, token, message in cases:
        with pytest.raises(hub.HubError, match=message):
            hub.load_dataset_table(dataset_id, "train", token)
    assert hub.load_dataset_table("langcommunity/private-set", "train", "hf_alice").num_rows == 3
    assert hub.load_dataset_table("gatedorg/gated-set", "train", "hf_bob").num_rows == 3
    with pytest.raises(hub.HubError, match="has no split 'validation'.*train"):
        hub.load_dataset_table("gatedorg/gated-set", "validation", "hf_bob")


def test_private_data_cached_for_one_user_is_not_served_to_another(users):
    """datasets falls back to its local cache when the Hub refuses; our access check comes first."""
    repo = f"alice/{_name('secret')}"
    hub.push_dataset(TABLE, repo, "hf_alice", private=True, card="# secret")
    assert hub.load_dataset_table(repo, "train", "hf_alice").num_rows == 3  # now in the local datasets cache
    for token in ("hf_bob", None):
        with pytest.raises(hub.HubError, match="not found"):
            hub.load_dataset_table(repo, "train", token)


def test_unreachable_hub(users):
    with users.unreachable():
        for call in (
            lambda: hub.whoami("hf_alice"),
            lambda: hub.load_dataset_table("alice/x", "train", None),
            lambda: hub.push_dataset(TABLE, "alice/x", "hf_alice", private=False, card="# x"),
        ):
            with pytest.raises(hub.HubUnreachable, match="Could not reach the Hugging Face Hub"):
                call()


def test_repo_exists(users):
    repo = f"alice/{_name()}"
    assert not hub.repo_exists(repo, "hf_alice")
    hub.push_dataset(TABLE, repo, "hf_alice", private=True, card="# x")
    assert hub.repo_exists(repo, "hf_alice")
    assert not hub.repo_exists(repo, "hf_bob")  # private: invisible to others


def test_render_card():
    card = hub.render_card({"license": "mit", "language": ["yo"], "pretty_name": None}, "\n# Title\n\nBody\n")
    assert card.startswith("---\n") and "license: mit" in card and "- yo" in card and "pretty_name" not in card
    assert card.rstrip().endswith("Body") and "\n---\n\n# Title" in card


def test_upload_files(users):
    repo = f"alice/{_name()}"
    hub.push_dataset(TABLE, repo, "hf_alice", private=False, card="# x")
    hub.upload_files(repo, {"checkpoints/raw.jsonl": "{}\n"}, "hf_alice")
    assert users.files(repo)["checkpoints/raw.jsonl"] == b"{}\n"
    with pytest.raises(hub.HubError):
        hub.upload_files(repo, {"x.txt": "no"}, "hf_bob")


def test_owners_lists_writable_namespaces_and_falls_back_to_the_user(users):
    assert hub.owners("hf_alice") == hub.whoami("hf_alice").namespaces
    assert hub.owners("hf_alice")[0] == "alice" and "langcommunity" in hub.owners("hf_alice")
    assert hub.owners("hf_not_a_real_token", "olga") == ["olga"]  # the Hub refused: the signed-in user's own name
    assert hub.owners(None) == []
