"""The data contracts in pipeline/schema.py: every table's Arrow schema declared once and matching the column
lists, and RunMeta / Provenance to and from JSON (old files still read; unknown keys kept)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.core import schema
from pipeline.core.schema import ModelRef, Provenance, RunMeta, Sampling


def test_each_tables_schema_matches_its_columns():
    from pipeline.judge import labels as judge_labels

    assert tuple(schema.FILTERED_SCHEMA.names) == schema.FILTERED_COLUMNS
    assert tuple(schema.raw_schema().names) == schema.RAW_COLUMNS
    assert tuple(schema.ANNOTATION_SCHEMA.names) == (*schema.ANNOTATION_COLUMNS, *schema.EXTRA_ANNOTATION_COLUMNS)
    assert judge_labels.labels_table([]).column_names == list(schema.LABEL_COLUMNS)
    assert set(schema.REQUIRED_RAW_COLUMNS) <= set(schema.RAW_COLUMNS)
    assert set(schema.REQUIRED_ANNOTATION_COLUMNS) <= set(schema.ANNOTATION_COLUMNS)
    from pipeline import export as ex

    assert set(schema.EXPORT_SCHEMAS) == set(ex.FORMATS)  # a format without its schema fails here
    for fmt, sch in schema.EXPORT_SCHEMAS.items():
        assert sch.names == ["prompt", "chosen", "rejected", *ex.EXTRA_COLUMNS], fmt


def test_run_meta_round_trip_keeps_every_field_and_unknown_keys():
    meta = RunMeta(
        source=Provenance(
            dataset="me/prompts",
            config="sw",
            split="train",
            license="mit",
            language="Swahili",
            language_code="swh",
            filters={"sample": 5, "annotation_types": ("a", "b")},
            filter_notes=("random sample of at most 5 rows (seed 42)",),
            rows=5,
            file="sw.parquet",
        ),
        language="Swahili",
        language_code="swh",
        generators=(ModelRef(model="org/gen", kind="serverless", provider="together"),),
        judge=ModelRef(model="org/judge", kind="openai", base_url="http://127.0.0.1:8000/v1"),
        system_prompt="Jibu kwa Kiswahili.",
        aspect="honesty",
        generation=Sampling(max_new_tokens=300, temperature=0.7, top_p=0.95, seed=1),
        fingerprint="abc",
        rows=5,
        counts={"ok": 5},
        judge_mode="pairwise",
        created_at="2026-01-01",
    )
    text = meta.to_json()
    back = RunMeta.from_json(text)
    assert back == meta and back.source.filters["annotation_types"] == ["a", "b"]
    newer = {**json.loads(text), "parse_rate_goal": 0.9}  # a field a newer version added
    again = RunMeta.from_dict(newer)
    assert again == meta and json.loads(again.to_json())["parse_rate_goal"] == 0.9  # kept, written back


def test_the_dict_the_app_wrote_before_reads_with_its_aliases():
    old = {  # recipe.build_raw_meta's dict, as in dpo_studio.json files pushed before RunMeta
        "fingerprint": "f1",
        "models": ["org/gen-a"],
        "judge_model": "org/the-judge",
        "generators": [{"kind": "serverless", "model": "org/gen-a", "base_url": "", "provider": "auto"}],
        "judge": {"kind": "serverless", "model": "org/the-judge", "base_url": "", "provider": "auto"},
        "system_prompt": "Wees kort.",
        "aspect": "overall-rating",
        "settings": {
            "generation": {"max_new_tokens": 512, "temperature": 0.7, "top_p": 0.95, "seed": None},
            "judge_generation": {"max_new_tokens": 640, "temperature": 0.1},
            "concurrency": 8,
        },
        "source": {"dataset": "dpo-studio/demo", "split": "train", "license": "apache-2.0", "demo": True},
        "license": "apache-2.0",
        "source_dataset": "dpo-studio/demo",
        "language": "Dutch",
        "language_name": "Dutch",
        "language_code": "nld",
        "rows": 3,
        "counts": {"ok": 3},
        "created_with": "DPO Studio",
        "created_at": "2026-11-30",
        "run_state": "done",
        "hedged_calls": 2,
    }
    meta = RunMeta.from_dict(old)
    assert meta.models == ["org/gen-a"] and meta.judge_model == "org/the-judge" and meta.concurrency == 8
    assert meta.source.demo and meta.source.dataset == "" and meta.source.license == "apache-2.0"
    assert meta.generation.max_new_tokens == 512 and meta.judge_generation.max_new_tokens == 640
    assert meta.run_state == "done" and meta.hedged_calls == 2 and not meta.unknown  # aliases are not "unknown"
    flat = RunMeta.from_dict({"source_dataset": "me/x", "source_license": ["mit", "cc0"], "generator_models": "a/b"})
    assert flat.source.dataset == "me/x" and flat.source.license == "mit, cc0" and flat.models == ["a/b"]


@pytest.mark.parametrize(
    "bad,message",
    [
        ("[1, 2]", "must be a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"rows": "many"}', "run.rows must be a number"),
        ('{"generators": "org/gen"}', "run.generators must be a list"),
        ('{"source": {"filters": [1]}}', "source.filters must be an object"),
    ],
)
def test_bad_metadata_says_which_field(bad, message):
    with pytest.raises(schema.MetaError, match=message):
        RunMeta.from_json(bad)


def test_provenance_in_the_schema_metadata_survives_table_operations():
    import pyarrow as pa

    prov = Provenance(dataset="me/p", language_code="nld")
    table = schema.with_provenance(pa.table({"a": [1, 2]}).replace_schema_metadata({"other": "kept"}), prov)
    assert schema.provenance_of(table.select(["a"]).slice(0, 1)) == prov  # select and slice keep the metadata
    assert table.schema.metadata[b"other"] == b"kept"
    meta = RunMeta(source=prov, fingerprint="x")
    raw = schema.with_provenance(pa.table({"a": [1]}), None, meta)
    assert schema.run_meta_of(raw) == meta and schema.provenance_of(raw) == prov  # from the run's metadata
    assert schema.provenance_of(pa.table({"a": [1]})) is None
    assert Provenance().label == "an unknown source" and Provenance(demo=True).label == schema.DEMO_LABEL


def test_raw_row_refuses_a_misspelled_or_missing_key():
    values = {c: None for c in schema.RAW_COLUMNS}
    row = schema.raw_row(**values)
    assert list(row) == list(schema.RAW_COLUMNS)
    assert pa.Table.from_pylist([row], schema=schema.raw_schema()).num_rows == 1
    misspelled = {**{k: v for k, v in values.items() if k != "language_match"}, "languge_match": [True]}
    with pytest.raises(TypeError, match="unknown key.*languge_match.*missing key.*language_match"):
        schema.raw_row(**misspelled)
    with pytest.raises(TypeError, match="missing key.*status"):
        schema.raw_row(**{k: v for k, v in values.items() if k != "status"})
