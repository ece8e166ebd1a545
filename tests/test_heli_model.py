"""pipeline.langcheck.heli_model: heliport's models as compact memory-mapped arrays.

- A tiny heliport source release made here (models counted from the evaluation set's text, a ``lang.rs`` with a
  macrolanguage and a CJK language, a ``utils.rs`` pattern) is built and scored; the scores are compared with a
  plain transcription of heliport's Rust scoring loop (dicts and loops, written from ``identifier.rs``).
- The real compact model (built by ``scripts/test``'s install step) gives the heliport wheel's top language and
  score on the demo answers and a slice of the evaluation set.
- An unfinished build is refused and the detector falls back to the wheel; a build that fails leaves nothing behind;
  the sdist download refuses a file whose sha256 differs.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import math
import re
import tarfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import regex

from pipeline.langcheck import heli_model, heliport_detector

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "bench" / "data" / "langcheck_eval.jsonl"
ORDERS = heli_model.ORDERS
LANG_RS = """
#[repr(u8)]
pub enum Lang {
    afr,
    cmn,
    msa,
    msaind,
    msazsm,
    nld,
    und,
    yor,
    zxx,
}

impl Lang {
    pub fn is_cjk(&self) -> bool {
        *self == Lang::cmn
    }

    pub fn collapse(&self) -> Self {
        match self {
            Lang::msaind | Lang::msazsm => Lang::msa,
            _ => self.clone(),
        }
    }
}
"""
UTILS_RS = 'static ref RE_NON_ALPHA: Regex = Regex::new(r#"[^#gc\\p{L}\\p{M}′\'’´ʹ]"#)\n'
TRAIN = {"afr": "afr", "nld": "nld", "yor": "yor", "cmn": "zho", "msaind": "ind", "msazsm": "zsm"}


def _eval_texts() -> dict[str, list[str]]:
    by_code: dict[str, list[str]] = defaultdict(list)
    for line in EVAL.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_code[row["code"]].append(row["text"])
    return by_code


def _words(text: str) -> list[str]:
    return regex.sub(r"[^\p{L}\p{M}]", " ", text.lower()).split()


def _write_model(path: Path, counts: Counter[str]) -> None:
    lines = [str(sum(counts.values()))] + [f"{g}\t{n}" for g, n in counts.most_common()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A heliport source release in miniature: models counted from the first 30 samples of six languages."""
    root = tmp_path_factory.mktemp("heliport-src") / "heliport-9.9.9"
    models = root / "LanguageModels"
    models.mkdir(parents=True)
    (root / "heliport-model" / "src").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "heliport-model" / "src" / "lang.rs").write_text(LANG_RS, encoding="utf-8")
    (root / "src" / "utils.rs").write_text(UTILS_RS, encoding="utf-8")
    texts = _eval_texts()
    for lang, code in TRAIN.items():
        words = [w for t in texts[code][:30] for w in _words(t)]
        _write_model(models / f"{lang}.word.model", Counter(words))
        for t in range(1, 7):
            grams: Counter[str] = Counter()
            for w in words:
                spaced = f" {w} "
                grams.update(spaced[i : i + t] for i in range(len(spaced) - t + 1))
            _write_model(models / f"{lang}.{ORDERS[t]}.model", grams)
    (models / "languagelist").write_text("\n".join(sorted(TRAIN)) + "\n", encoding="utf-8")
    (models / "confidenceThresholds").write_text("".join(f"{lang}\t0.1\n" for lang in sorted(TRAIN)))
    return root


def _tarball(source: Path, path: Path) -> Path:
    """``source`` packed as an sdist is (``heliport-x.y.z/...`` inside a ``.tar.gz``)."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname=source.name)
    return path


def _reference_scores(source: Path, text: str) -> dict[str, float]:
    """heliport's scoring loop (identifier.rs ``score_langs``), transcribed with dicts and loops."""
    enum = ["afr", "cmn", "msa", "msaind", "msazsm", "nld", "und", "yor", "zxx"]
    models: list[dict[str, dict[str, float]]] = []
    for order in ORDERS:
        dic: dict[str, dict[str, float]] = defaultdict(dict)
        for lang in TRAIN:
            lines = (source / "LanguageModels" / f"{lang}.{order}.model").read_text(encoding="utf-8").splitlines()
            total_features = int(lines[0])
            kept = {}
            for line in lines[1:]:
                gram, n = line.split("\t")
                if int(n) / total_features <= heli_model.MAX_USED:
                    break
                kept[gram] = int(n)
            amount = sum(kept.values())
            for gram, n in kept.items():
                dic[gram][lang] = -math.log10(n / amount)
        models.append(dic)
    replaced = regex.sub(r"[^#gc\p{L}\p{M}′'’´ʹ]", " ", text.lower())
    cjk = [0x4E00 <= ord(c) <= 0x9FFF or 0x3000 <= ord(c) <= 0x303F for c in replaced]
    mystery, last_cjk, last_space, cjk_chars, length = [], False, False, 0, 0
    for c, is_cjk in zip(replaced, cjk, strict=True):
        if is_cjk:
            if not last_cjk and not last_space:
                mystery.append(" ")
            last_cjk, last_space, cjk_chars = True, False, cjk_chars + 1
        else:
            if last_cjk and c != " ":
                mystery.append(" ")
            last_space, last_cjk = c == " ", False
        if not last_space:
            length += 1
        mystery.append(c)
    words = "".join(mystery).split()
    points = dict.fromkeys(enum, 0.0)
    for word in words:
        word_scores = dict.fromkeys(enum, 0.0)

        def score(gram: str, order: int, ws: dict[str, float] = word_scores) -> bool:
            found = models[order].get(gram)
            if not found:
                return False
            for lang in enum:
                ws[lang] += found.get(lang, heli_model.PENALTY)
            return True

        scored = score(word, 0)
        if not scored:
            spaced = f" {word} "
            for t in range(6, 0, -1):
                hits = sum(score(spaced[i : i + t], t) for i in range(len(spaced) - t + 1))
                if hits:
                    for lang in enum:
                        word_scores[lang] /= hits
                    break
        for lang in enum:
            points[lang] += word_scores[lang]
    for lang in enum:
        points[lang] /= len(words)
        if length and cjk_chars / length > 0.5 and lang != "cmn":
            points[lang] = heli_model.PENALTY + 1.0
    return points


def test_a_tiny_release_builds_and_scores_as_heliports_loop(tiny_source: Path, tmp_path: Path) -> None:
    out = heli_model.build(tiny_source, tmp_path / "compact")
    model = heli_model.HeliModel(out)
    meta = model.meta
    assert meta["collapse"] == {"msaind": "msa", "msazsm": "msa"} and meta["cjk_langs"] == ["cmn"]
    assert meta["langs"][:3] == ["afr", "cmn", "msa"] and "msa" not in meta["model_langs"]
    texts = _eval_texts()
    samples = [t for code in TRAIN.values() for t in texts[code][30:36]]
    samples += [texts["nld"][40][:25], "Ẹ káàrọ̀! 你好世界 ok", "xyzzy qwrtp", texts["zho"][35][:12]]
    for text in samples:
        ours = model.scores(text)
        ref = _reference_scores(tiny_source, text)
        assert ours is not None
        for i, lang in enumerate(meta["langs"]):
            assert ours[i] == pytest.approx(ref[lang], abs=1e-4), (text[:40], lang)
    # macrolanguage members collapse into one label; held-out text is recognised
    assert model.topk(texts["ind"][35], 2)[0][0] == "msa"
    assert [lbl for lbl, _ in model.topk(texts["ind"][35], 3)].count("msa") == 1
    assert model.topk(texts["yor"][33], 1)[0][0] == "yor"
    assert model.topk(texts["zho"][36], 1)[0][0] == "cmn"
    assert model.topk("1234 !!! 🙂", 2) == [("zxx", heli_model.PENALTY)]


def test_a_tarball_release_builds_the_same_arrays(tiny_source: Path, tmp_path: Path) -> None:
    tar_path = _tarball(tiny_source, tmp_path / "heliport-9.9.9.tar.gz")
    a = heli_model.build(tiny_source, tmp_path / "from-dir")
    b = heli_model.build(tar_path, tmp_path / "from-tar")
    for order in ORDERS:
        for part in ("keys", "indptr", "langs", "gains"):
            assert np.array_equal(np.load(a / f"{order}.{part}.npy"), np.load(b / f"{order}.{part}.npy"))


def test_a_failed_build_leaves_nothing_and_an_unfinished_one_is_refused(tiny_source: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    for path in tiny_source.rglob("*"):
        if path.is_file() and path.name != "yor.trigram.model":
            target = broken / path.relative_to(tiny_source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    with pytest.raises(heli_model.HeliModelError, match="yor.trigram.model"):
        heli_model.build(broken, tmp_path / "out" / "compact")
    assert list((tmp_path / "out").iterdir()) == []  # no half-written model, no temporary folder
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "word.keys.npy").write_bytes(b"partial")
    assert not heli_model.is_built(unfinished)
    with pytest.raises(heli_model.HeliModelError, match="no finished"):
        heli_model.HeliModel(unfinished)
    with pytest.raises(heli_model.HeliModelError, match="not heliport's source release"):
        heli_model.build(tmp_path / "unfinished", tmp_path / "never")


def test_the_detector_falls_back_to_the_wheel_without_a_compact_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPO_STUDIO_HELI_DIR", str(tmp_path / "none"))
    det = heliport_detector.HeliportDetector()
    assert "compact" not in det.version()
    pred = det.predict("Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní orílẹ̀-èdè Nàìjíríà, ó sì jẹ́ ibùdó òwò pàtàkì.")
    assert det.engine() == "heliport wheel" and pred.label == "yor"


@pytest.fixture(scope="module")
def compact() -> heli_model.HeliModel:
    directory = heli_model.default_dir()
    assert heli_model.is_built(directory), f"no compact model in {directory}: run scripts/test (it builds it)"
    return heli_model.HeliModel(directory)


def test_the_real_compact_model_agrees_with_the_heliport_wheel(compact: heli_model.HeliModel) -> None:
    import heliport

    ident = heliport.Identifier()
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows if r["source"] == "demo"] + [r["text"] for r in rows[::15]]
    texts += [t[:30] for t in texts[::3]]
    for text in texts:
        ours = compact.topk(text, 2)
        theirs = ident.identify_topk_with_score(text, 2)
        assert ours[0][0] == theirs[0][0], text[:60]
        assert ours[0][1] == pytest.approx(theirs[0][1], abs=1e-3)
        assert len(ours) == len(theirs)  # one entry, zxx, for a text without letters
        if len(ours) == 2:
            assert ours[1][1] - ours[0][1] == pytest.approx(theirs[1][1] - theirs[0][1], abs=2e-3)
    assert len(texts) > 300


def test_the_detector_uses_the_compact_model_when_built(compact: heli_model.HeliModel) -> None:
    det = heliport_detector.HeliportDetector()
    assert det.version() == f"{heli_model.HELIPORT_VERSION} (compact model)"
    assert det.predict("Ọmọ náà ń ka ìwé rẹ̀ ní ilé-ìwé lójoojúmọ́ pẹ̀lú àwọn ọ̀rẹ́ rẹ̀.").key == "yo"
    assert det.engine() == "compact model"
    assert set(heliport_detector.labels()) == set(compact.meta["thresholds"])


class _Index(http.server.BaseHTTPRequestHandler):
    payload = b""
    then: bytes | None = None
    digest = ""
    delay = 0.0

    def do_GET(self) -> None:
        if self.path.endswith("/heliport/"):
            name = f"heliport-{heli_model.HELIPORT_VERSION}.tar.gz"
            body = json.dumps(
                {"files": [{"filename": name, "url": f"files/{name}", "hashes": {"sha256": self.digest}}]}
            )
            data, kind = body.encode(), "application/vnd.pypi.simple.v1+json"
        else:
            time.sleep(self.delay)
            data, kind = self.payload, "application/gzip"
            if _Index.then is not None:  # the next download gets other bytes (a bad download, then a good one)
                _Index.payload, _Index.then = _Index.then, None
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> object:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


def test_the_sdist_download_checks_the_pinned_sha256(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", index)
    _Index.payload = b"not heliport"
    _Index.digest = hashlib.sha256(_Index.payload).hexdigest()
    with pytest.raises(heli_model.HeliModelError, match="sha256"):
        heli_model.fetch_sdist(tmp_path)  # the index lists another file than the pinned one
    _Index.digest = heli_model.SDIST_SHA256  # the index lies: the bytes are not the pinned release
    with pytest.raises(heli_model.HeliModelError, match="does not match"):
        heli_model.fetch_sdist(tmp_path)
    assert not list(tmp_path.glob("*.tar.gz")) and not list(tmp_path.glob("*.part"))
    _Index.digest = hashlib.sha256(b"not heliport").hexdigest()
    monkeypatch.setattr(heli_model, "SDIST_SHA256", _Index.digest)
    got = heli_model.fetch_sdist(tmp_path)
    assert got.read_bytes() == b"not heliport" and re.search(r"heliport-[\d.]+\.tar\.gz$", got.name)


def test_a_space_builds_the_model_in_the_background_and_an_offline_one_says_why(
    index: str, tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _Index.payload = _tarball(tiny_source, tmp_path / "release.tar.gz").read_bytes()
    _Index.digest = hashlib.sha256(_Index.payload).hexdigest()
    monkeypatch.setattr(heli_model, "SDIST_SHA256", _Index.digest)
    monkeypatch.setenv("DPO_STUDIO_HELI_DIR", str(tmp_path / "cache" / "compact"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    heli_model.build_in_background().join(timeout=60)
    assert "compact heliport model not built" in capsys.readouterr().out
    assert not heli_model.is_built()
    monkeypatch.setenv("PIP_INDEX_URL", index)
    monkeypatch.setattr(_Index, "delay", 1.0)  # a slow download: the first check comes while the build runs
    thread = heli_model.build_in_background()
    det = heliport_detector.HeliportDetector()
    assert det.predict("Ọmọ náà ń ka ìwé rẹ̀ ní ilé-ìwé.").label == "yor"
    assert det.engine() == "compact model"  # it waited for the build instead of loading the wheel
    thread.join(timeout=120)
    assert heli_model.is_built() and heli_model.HeliModel(heli_model.default_dir()).topk("ọmọ", 1)[0][0] == "yor"
    assert (tmp_path / "cache" / "heliport-sdist" / f"heliport-{heli_model.HELIPORT_VERSION}.tar.gz").is_file()


def test_a_bad_download_is_tried_once_more_and_a_failed_install_step_says_why(
    index: str, tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    good = _tarball(tiny_source, tmp_path / "release.tar.gz").read_bytes()
    _Index.digest = hashlib.sha256(good).hexdigest()
    monkeypatch.setattr(heli_model, "SDIST_SHA256", _Index.digest)
    monkeypatch.setenv("PIP_INDEX_URL", index)
    _Index.payload, _Index.then = good[: len(good) // 2], good  # cut off the first time
    assert heli_model.main([str(tmp_path / "a" / "compact")]) == 0
    assert heli_model.is_built(tmp_path / "a" / "compact")
    assert "building the compact heliport model" in capsys.readouterr().out
    _Index.payload, _Index.then = b"broken", b"still broken"
    assert heli_model.main([str(tmp_path / "b" / "compact")]) == 0  # the app still runs, on the wheel
    out = capsys.readouterr().out
    assert "NOT built" in out and "does not match its sha256" in out and "Run the same command again" in out
    assert not heli_model.is_built(tmp_path / "b" / "compact")
