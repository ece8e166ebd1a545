import pyarrow as pa
import pytest

from pipeline.core.tablefiles import TableFileError, read_table, write_table

ROWS = [
    {"id": "a", "responses": ["Hallo", "Hoi"], "ratings": [4, None], "prompt": 'Zeg "hallo"\nin het Nederlands'},
    {"id": "b", "responses": ["Dag"], "ratings": [None], "prompt": "<script>x</script>"},
]


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl", "T.JSON"])
def test_round_trip_keeps_rows_exactly(tmp_path, name):
    path = write_table(pa.Table.from_pylist(ROWS), tmp_path / "sub" / name)
    assert read_table(path).to_pylist() == ROWS
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    path = write_table(pa.Table.from_pylist(ROWS), tmp_path / "t.jsonl")
    before = path.read_bytes()

    class Boom:  # a "table" whose rows fail half-way
        def to_pylist(self):
            yield ROWS[0]
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_table(Boom(), path)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_clear_errors(tmp_path):
    with pytest.raises(TableFileError, match="use a .parquet or .jsonl"):
        read_table(tmp_path / "x.csv")
    with pytest.raises(TableFileError, match="does not exist"):
        read_table(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(TableFileError, match="line 2"):
        read_table(bad)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(TableFileError, match="not a readable Parquet"):
        read_table(broken)


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl"])
def test_schema_metadata_and_types_travel_with_the_file(tmp_path, name):
    from pipeline.core import schema

    prov = schema.Provenance(
        dataset="me/prompts",
        split="train",
        language="Dutch",
        language_code="nld",
        filters={"language": "nld", "sample": 5},
        filter_notes=("random sample of 5 rows",),
    )
    typed = pa.table({"id": ["a"], "ratings": pa.array([[None, None]], pa.list_(pa.float64()))})
    path = write_table(schema.with_provenance(typed, prov), tmp_path / name)
    back = read_table(path)
    assert schema.provenance_of(back) == prov
    assert back.schema.field("ratings").type == pa.list_(pa.float64())  # not list<null>, also for JSON Lines
    if name.endswith(".jsonl"):  # the sidecar is readable by people and tools
        side = tmp_path / "t.jsonl.schema.json"
        assert '"dataset": "me/prompts"' in side.read_text(encoding="utf-8")
        write_table(typed, path)  # the same file rewritten without metadata: the old sidecar goes
        assert not side.exists() and schema.provenance_of(read_table(path)) is None


def test_a_jsonl_file_edited_by_hand_still_reads(tmp_path):
    from pipeline.core import schema

    path = write_table(
        schema.with_provenance(pa.Table.from_pylist(ROWS), schema.Provenance(dataset="me/p")), tmp_path / "t.jsonl"
    )
    path.write_text('{"id": "c", "note": "a column the schema does not have"}\n', encoding="utf-8")
    back = read_table(path)
    assert back.to_pylist() == [{"id": "c", "note": "a column the schema does not have"}]
    assert schema.provenance_of(back).dataset == "me/p"  # the provenance still applies
    (tmp_path / "t.jsonl.schema.json").write_text("{not json", encoding="utf-8")
    assert read_table(path).to_pylist() == [{"id": "c", "note": "a column the schema does not have"}]
