"""Benchmark: language checks per call, DPO Studio's ``pipeline.langcheck.check`` vs plain ``langid.classify``.

(Each language is checked by the detector the routing table picks for it: langid or heliport, plus the script
check; ``bench/langcheck.py`` measures accuracy per language.)

Builds ``--n`` (10,000) mixed-language strings from sentences in 14 languages / 6 scripts (2-14 sentences each,
sometimes two languages mixed, ~60-1000 characters, mean ~285, near Aya answers), then in one run:

- ``per_call_ms``: ``langcheck.check(text, target)`` per string (target = the string's main language), model
  already loaded (the sparse, BLAS-free scorer);
- ``baseline_ms``: ``langid.classify(text)`` per string with numpy/OpenBLAS at their default threading;
- ``agreement``: share of strings where both give the same language (langid's code).

Prints one JSON line last. Goal: per_call_ms <= 0.25.
Usage: ``python bench/langid.py [--n 10000] [--baseline-n 2000]``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file is called langid.py: keep its folder off the path so ``import langid`` finds the real package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import langid  # noqa: E402

from pipeline import langcheck  # noqa: E402

SENTENCES = {
    "nld": [
        "De hoofdstad van Nederland is Amsterdam.",
        "Ik fiets elke dag naar mijn werk, ook als het regent.",
        "Erwtensoep eet je het liefst in de winter.",
        "De trein naar Utrecht vertrekt over tien minuten.",
    ],
    "eng": [
        "The weather is lovely today.",
        "Please send me the report before Friday afternoon.",
        "Photosynthesis turns light into chemical energy.",
        "She has lived in London for ten years.",
    ],
    "fra": [
        "Le musée ouvre ses portes à neuf heures.",
        "Nous avons mangé une excellente tarte aux pommes.",
        "La Révolution française a commencé en 1789.",
        "Il pleut souvent en Bretagne au printemps.",
    ],
    "deu": [
        "Der Zug nach München hat leider Verspätung.",
        "Ich lerne seit zwei Jahren Klavier spielen.",
        "Die Berliner Mauer fiel im Jahr 1989.",
        "Im Sommer fahren wir gern an die Ostsee.",
    ],
    "spa": [
        "El mercado abre todos los sábados por la mañana.",
        "Me gusta leer novelas de García Márquez.",
        "La paella es un plato típico de Valencia.",
        "Mañana vamos a visitar a mis abuelos.",
    ],
    "arb": [
        "القاهرة هي عاصمة مصر وأكبر مدنها.",
        "أحب قراءة الكتب في المساء.",
        "يتحدث الملايين اللغة العربية حول العالم.",
        "ذهبنا إلى السوق لشراء الفاكهة.",
    ],
    "rus": [
        "Москва — столица России.",
        "Я люблю читать книги по вечерам.",
        "Зимой в Сибири очень холодно.",
        "Мы поедем на дачу в выходные.",
    ],
    "hin": [
        "नई दिल्ली भारत की राजधानी है।",
        "मुझे सुबह चाय पीना पसंद है।",
        "गंगा भारत की सबसे पवित्र नदी मानी जाती है।",
        "हम कल बाज़ार जाएंगे।",
    ],
    "jpn": [
        "東京は日本の首都です。",
        "毎朝コーヒーを飲みます。",
        "富士山は日本で一番高い山です。",
        "明日は雨が降るでしょう。",
    ],
    "pes": [
        "تهران پایتخت ایران است.",
        "من هر روز صبح ورزش می‌کنم.",
        "حافظ شاعر بزرگ ایرانی است.",
        "فردا به کتابخانه می‌روم.",
    ],
    "plt": [
        "Antananarivo no renivohitr'i Madagasikara.",
        "Tiako ny mamaky boky amin'ny hariva.",
        "Mafana be ny andro androany.",
        "Handeha ho any an-tsena izahay rahampitso.",
    ],
    "swh": [
        "Nairobi ni mji mkuu wa Kenya.",
        "Ninapenda kusoma vitabu jioni.",
        "Mvua inanyesha sana leo asubuhi.",
        "Tutaenda sokoni kesho asubuhi.",
    ],
    "zsm": [
        "Kuala Lumpur ialah ibu negara Malaysia.",
        "Saya suka membaca buku pada waktu malam.",
        "Cuaca hari ini sangat panas.",
        "Kami akan pergi ke pasar esok pagi.",
    ],
    "yor": [
        "Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní Nàìjíríà.",
        "Mo fẹ́ràn láti ka ìwé ní alẹ́.",
        "Òjò ń rọ̀ gidigidi lónìí.",
        "A ó lọ sí ọjà ní ọ̀la.",
    ],
}


def make_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    codes = sorted(SENTENCES)
    out = []
    for _ in range(n):
        main = rng.choice(codes)
        parts = [rng.choice(SENTENCES[main]) for _ in range(rng.randint(2, 14))]
        if rng.random() < 0.2:  # mixed: a sentence of another language
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(SENTENCES[rng.choice(codes)]))
        out.append((" ".join(parts), main))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--baseline-n", type=int, default=2_000, help="strings for the (slow) langid baseline")
    args = parser.parse_args()
    data = make_texts(args.n)
    for code in SENTENCES:  # loads each language's detector (langid, heliport)
        langcheck.warm_up(code)
    langid.classify("warm up")  # loads langid's global model

    started = time.perf_counter()
    ours = [langcheck.check(text, code) for text, code in data]
    per_call_ms = (time.perf_counter() - started) * 1000 / len(data)

    sample = data[: args.baseline_n]
    started = time.perf_counter()
    theirs = [langid.classify(text)[0] for text, _ in sample]
    baseline_ms = (time.perf_counter() - started) * 1000 / len(sample)

    key = langcheck.canonical
    same = sum(
        (o.detected is not None and key(o.detected) == key(t)) or bool(o.match and key(code) == key(t))
        for o, t, (_, code) in zip(ours, theirs, sample)
    )
    result = {
        "bench": "langid",
        "n": len(data),
        "mean_chars": round(sum(len(t) for t, _ in data) / len(data), 1),
        "per_call_ms": round(per_call_ms, 4),
        "baseline_ms": round(baseline_ms, 4),
        "speedup": round(baseline_ms / per_call_ms, 1),
        "agreement": round(same / len(sample), 4),
        "unsupported_share": round(sum(o.match is None for o in ours) / len(ours), 3),
        "goal_per_call_ms": 0.25,
    }
    print(f"ours {per_call_ms:.3f} ms/call, langid.classify {baseline_ms:.3f} ms/call", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
