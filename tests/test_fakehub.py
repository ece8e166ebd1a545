"""The fake Hub behaves like the Hub for the real ``huggingface_hub`` and ``datasets`` clients."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest


def _name(prefix: str = "repo") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def hub(fake_hub):
    fake_hub.add_user("alice", "hf_alice_write", orgs={"team": "write", "readers": "read"})
    fake_hub.add_user("bob", "hf_bob_write")
    fake_hub.add_user("carol", "hf_carol_read", read_only=True)
    return fake_hub


def test_endpoint_is_the_fake(fake_hub):
    from huggingface_hub import constants

    assert constants.ENDPOINT == fake_hub.url
    assert fake_hub.url.startswith("http://127.0.0.1:")


def test_whoami(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    me = HfApi().whoami(token="hf_alice_write")
    assert me["name"] == "alice"
    assert {o["name"]: o["roleInOrg"] for o in me["orgs"]} == {"team": "write", "readers": "read"}
    assert me["auth"]["accessToken"]["role"] == "write"
    assert HfApi().whoami(token="hf_carol_read")["auth"]["accessToken"]["role"] == "read"
    with pytest.raises(HfHubHTTPError) as err:
        HfApi().whoami(token="hf_not_a_token")
    assert err.value.response.status_code == 401


def test_create_repo_rules(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    name = _name()
    url = api.create_repo(f"alice/{name}", repo_type="dataset", token="hf_alice_write")
    assert url.repo_id == f"alice/{name}"
    assert hub.exists(f"alice/{name}")
    # exists → 409, unless exist_ok
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(f"alice/{name}", repo_type="dataset", token="hf_alice_write")
    assert err.value.response.status_code == 409
    api.create_repo(f"alice/{name}", repo_type="dataset", token="hf_alice_write", exist_ok=True)
    # someone else's namespace → 403; an org where you write → ok; an org where you only read → 403
    for token, repo in (("hf_bob_write", f"alice/{_name()}"), ("hf_alice_write", f"readers/{_name()}")):
        with pytest.raises(HfHubHTTPError) as err:
            api.create_repo(repo, repo_type="dataset", token=token)
        assert err.value.response.status_code == 403
        assert not hub.exists(repo)
    api.create_repo(f"team/{name}", repo_type="dataset", token="hf_alice_write")
    # no token → 401; read-only token → 403
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(f"alice/{_name()}", repo_type="dataset", token=False)
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(f"carol/{_name()}", repo_type="dataset", token="hf_carol_read")
    assert err.value.response.status_code == 403


def test_upload_list_download_roundtrip(hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    repo = f"alice/{_name()}"
    api.create_repo(repo, repo_type="dataset", token="hf_alice_write")
    api.upload_file(
        path_or_fileobj=b"hello", path_in_repo="notes/a.txt", repo_id=repo, repo_type="dataset", token="hf_alice_write"
    )
    big = bytes(range(256)) * 100  # binary → LFS
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "blob.bin").write_bytes(big)
    (tmp_path / "up" / "x.jsonl").write_text('{"a": 1}\n')
    api.upload_folder(
        folder_path=tmp_path / "up", path_in_repo="folder", repo_id=repo, repo_type="dataset", token="hf_alice_write"
    )
    files = api.list_repo_files(repo, repo_type="dataset", token="hf_alice_write")
    assert sorted(files) == [".gitattributes", "folder/blob.bin", "folder/x.jsonl", "notes/a.txt"]
    entries = {e.path: e for e in api.list_repo_tree(repo, repo_type="dataset", recursive=True)}
    assert entries["folder/blob.bin"].lfs is not None and entries["folder/blob.bin"].lfs.size == len(big)
    assert entries["notes/a.txt"].lfs is None
    path = hf_hub_download(repo, "folder/blob.bin", repo_type="dataset", cache_dir=tmp_path / "c")
    assert open(path, "rb").read() == big
    assert hub.files(repo)["notes/a.txt"] == b"hello"
    info = api.dataset_info(repo)
    assert {s.rfilename for s in info.siblings} == set(files)
    assert [p.path for p in api.get_paths_info(repo, ["notes/a.txt", "folder", "nope"], repo_type="dataset")] == [
        "notes/a.txt",
        "folder",
    ]
    # unchanged file → no new commit
    n = len(hub.commits(repo))
    api.upload_file(
        path_or_fileobj=b"hello", path_in_repo="notes/a.txt", repo_id=repo, repo_type="dataset", token="hf_alice_write"
    )
    assert len(hub.commits(repo)) == n


def test_write_permissions_and_conflicts(hub):
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    repo = f"alice/{_name()}"
    api.create_repo(repo, repo_type="dataset", token="hf_alice_write")
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, repo_type="dataset", token="hf_bob_write"
        )
    assert err.value.response.status_code == 403
    old = api.dataset_info(repo).sha
    api.upload_file(
        path_or_fileobj=b"1", path_in_repo="x.txt", repo_id=repo, repo_type="dataset", token="hf_alice_write"
    )
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo,
            [CommitOperationAdd("y.txt", b"2")],
            commit_message="stale",
            parent_commit=old,
            repo_type="dataset",
            token="hf_alice_write",
        )
    assert err.value.response.status_code == 412
    assert "y.txt" not in hub.files(repo)


def test_private_and_missing_repos(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi()
    repo = f"alice/{_name()}"
    api.create_repo(repo, repo_type="dataset", private=True, token="hf_alice_write")
    assert api.dataset_info(repo, token="hf_alice_write").private is True
    assert api.repo_exists(repo, repo_type="dataset", token="hf_alice_write")
    for token in ("hf_bob_write", False):
        assert not api.repo_exists(repo, repo_type="dataset", token=token)
        with pytest.raises(RepositoryNotFoundError):
            api.dataset_info(repo, token=token)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(f"alice/{_name('missing')}", token="hf_alice_write")
    # org members see the org's private repos
    api.create_repo(f"team/{_name()}", repo_type="dataset", private=True, token="hf_alice_write")


def test_gated_dataset(hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    repo = f"team/{_name('gated')}"
    hub.add_dataset(repo, [{"inputs": "q", "targets": "a"}], gated="manual", granted=["bob"])
    info = HfApi().dataset_info(repo)  # info is public
    assert info.gated == "manual"
    for token in (False, "hf_carol_read"):
        with pytest.raises(GatedRepoError):
            hf_hub_download(
                repo,
                "data/train-00000-of-00001.parquet",
                repo_type="dataset",
                token=token,
                cache_dir=tmp_path / str(token),
            )
    path = hf_hub_download(
        repo, "data/train-00000-of-00001.parquet", repo_type="dataset", token="hf_bob_write", cache_dir=tmp_path / "bob"
    )
    assert open(path, "rb").read()[:4] == b"PAR1"


def test_datasets_push_and_load_roundtrip(hub):
    import datasets

    repo = f"alice/{_name('ds')}"
    rows = {"prompt": ["Hoi", "Wat is 2+2?", "Здравствуй"], "response": ["Hallo!", "4", "Привет"]}
    datasets.Dataset.from_dict(rows).push_to_hub(repo, token="hf_alice_write", private=True)
    assert hub.repo(repo).private
    assert hub.read_table(repo).to_pydict() == rows
    back = datasets.load_dataset(repo, split="train", token="hf_alice_write")
    assert back.to_dict() == rows
    # a DatasetDict with two splits
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows),
            "test": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}),
        }
    )
    repo2 = f"team/{_name('dd')}"
    dd.push_to_hub(repo2, token="hf_alice_write")
    loaded = datasets.load_dataset(repo2, token="hf_alice_write")
    assert set(loaded) == {"train", "test"} and loaded["test"].num_rows == 1


def test_add_dataset_and_load(hub):
    import datasets

    repo = f"someone/{_name('seed')}"
    table = pa.table({"inputs": ["a", "b"], "targets": ["c", "d"]})
    hub.add_dataset(repo, table)
    assert datasets.load_dataset(repo, split="train").to_dict() == table.to_pydict()


def test_unreachable(hub):
    from huggingface_hub import HfApi

    with hub.unreachable():
        with pytest.raises(Exception) as err:
            HfApi().whoami(token="hf_alice_write")
        assert "connect" in repr(err.value).lower()
    assert HfApi().whoami(token="hf_alice_write")["name"] == "alice"


def test_requests_are_logged(hub):
    from huggingface_hub import HfApi

    before = len(hub.requests)
    HfApi().whoami(token="hf_bob_write")
    assert hub.requests[before:] == [("GET", "/api/whoami-v2", "bob")]


def test_delete_repo_and_fault_injection(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    repo = f"alice/{_name()}"
    api.create_repo(repo, repo_type="dataset", token="hf_alice_write")
    with pytest.raises(HfHubHTTPError):
        api.delete_repo(repo, repo_type="dataset", token="hf_bob_write")
    assert hub.exists(repo)
    hub.fail_next("GET", r"/api/whoami-v2", status=503)
    with pytest.raises(HfHubHTTPError) as err:
        api.whoami(token="hf_alice_write")
    assert err.value.response.status_code == 503
    api.delete_repo(repo, repo_type="dataset", token="hf_alice_write")
    assert not hub.exists(repo)
