import pyarrow as pa
import pytest

from pipeline.tablefiles import TableFileError, read_table, write_table

ROWS = [
    {"id": "a", "responses": ["Hallo", "Hoi"], "ratings": [4, None], "prompt": "Zeg \"hallo\"\nin het Nederlands"},
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
