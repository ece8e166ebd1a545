"""Language names and codes (with ``langcodes``): "Dutch", "dutch", "Nederlands", "nl" and "nld" all mean Dutch.

Codes inside DPO Studio are ISO 639-3, as in Aya (``nld``, ``arb``, ``plt``). ``resolve`` matches what a user
typed against the languages a dataset actually has, understanding macrolanguages ("Arabic"/"ar" → Standard Arabic
``arb``; "Malagasy"/"mg" → Plateau Malagasy ``plt``), and raises :class:`UnknownLanguage` with close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Language", "UnknownLanguage", "resolve", "lookup", "hub_tag", "display_name"]

_MAX_DISTANCE = 10  # langcodes.tag_distance: 0 = same language (incl. macrolanguage ↔ member), ≥ 30 = different


@dataclass(frozen=True)
class Language:
    name: str  # English name, e.g. "Dutch"
    code: str  # ISO 639-3, e.g. "nld"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class UnknownLanguage(ValueError):
    """The text matches no language (or none in the dataset); the message lists close matches."""


@lru_cache(maxsize=4096)
def _tag(text: str) -> str | None:
    """A BCP-47 tag for a code or a name in any language, or None."""
    import langcodes

    text = text.strip()
    if not text:
        return None
    try:
        lang = langcodes.get(text)
        if lang.is_valid() and lang.language:
            return str(lang)
    except (langcodes.tag_parser.LanguageTagError, LookupError, ValueError):
        pass
    try:
        return str(langcodes.find(text))
    except (LookupError, ValueError, ModuleNotFoundError):
        return None


@lru_cache(maxsize=4096)
def lookup(text: str) -> Language | None:
    """The language a name or code denotes, without a dataset to match against (None if unknown)."""
    import langcodes

    tag = _tag(text)
    if tag is None:
        return None
    lang = langcodes.get(tag)
    return Language(name=lang.display_name(), code=lang.to_alpha3())


def display_name(code: str | None) -> str:
    """English name for a code ("nld" → "Dutch"); the code itself if unknown; "" for no code."""
    if not code:
        return ""
    lang = lookup(code)
    return lang.name if lang else code


def label(code: str | None, empty: str = "?") -> str:
    """ "Dutch (nld)" for a code; the code alone when it has no known name; ``empty`` for no code."""
    name = display_name(code)
    return f"{name} ({code})" if name and name != code else (code or empty)


def hub_tag(code: str | None) -> str:
    """The tag for a dataset card's ``language:`` field: ISO 639-1 when there is one ("nl"), else 639-3 ("plt");
    "" for no code."""
    import langcodes

    if not code:
        return ""
    try:
        return langcodes.get(code).language or code
    except (langcodes.tag_parser.LanguageTagError, LookupError, ValueError):
        return code


def resolve(text: str, available: Iterable[tuple[str, str]] | None = None) -> Language:
    """Resolve what the user typed to a language; with ``available`` ((name, code) pairs of a dataset), to one of
    those. Raises UnknownLanguage with a message listing close matches."""
    import langcodes

    query = (text or "").strip()
    options = [(str(n), str(c)) for n, c in (available or [])]
    if not query:
        raise UnknownLanguage("Choose a language (a name like 'Dutch' or a code like 'nld').")
    folded = query.casefold()
    for name, code in options:  # exact name or code as written in the dataset
        if folded in (name.casefold(), code.casefold()):
            return Language(name=name, code=code)
    tag = _tag(query)
    if options:
        if tag is not None:
            scored = []
            for name, code in options:
                other = _tag(code) or _tag(name)
                if other is None:
                    continue
                distance = langcodes.tag_distance(tag, other)
                if distance <= _MAX_DISTANCE:
                    scored.append((distance, name, code))
            if scored:
                scored.sort()
                _, name, code = scored[0]
                return Language(name=name, code=code)
        raise UnknownLanguage(_unknown_message(query, options, tag))
    found = lookup(query)
    if found is None:
        raise UnknownLanguage(_unknown_message(query, [], None))
    return found


def _unknown_message(query: str, options: list[tuple[str, str]], tag: str | None) -> str:
    if options:
        names = sorted({n for n, _ in options})
        close = _close(query, options)
        where = "this dataset"
        if tag is not None:
            lang = lookup(query)
            head = f"{lang.name if lang else query} is not in {where}."
        else:
            head = f"'{query}' is not a language in {where}."
        if close:
            return f"{head} Did you mean: {', '.join(close)}?"
        shown = ", ".join(names[:25]) + (" …" if len(names) > 25 else "")
        return f"{head} It has: {shown}."
    return (
        f"'{query}' is not a language name or code I know. Use an English name ('Dutch') or an ISO code "
        "('nl' or 'nld')."
    )


def _close(query: str, options: list[tuple[str, str]]) -> list[str]:
    by_key: dict[str, str] = {}
    for name, code in options:
        by_key[name.casefold()] = f"{name} ({code})"
        by_key[code.casefold()] = f"{name} ({code})"
        for word in name.casefold().split():
            by_key.setdefault(word, f"{name} ({code})")
    hits = difflib.get_close_matches(query.casefold(), list(by_key), n=5, cutoff=0.6)
    out: list[str] = []
    for h in hits:
        if by_key[h] not in out:
            out.append(by_key[h])
    return out
