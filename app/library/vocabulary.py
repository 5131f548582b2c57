"""The shipped vocabulary of tags and scene phrases used for image -> text."""
from __future__ import annotations

from functools import lru_cache

from cots_resources import resource_path

VOCABULARY_FILES = ("scenes.txt", "imagenet.txt")


@lru_cache(maxsize=1)
def load_vocabulary() -> tuple[str, ...]:
    """Every phrase in ``cots_resources/vocabulary/*.txt``, de-duplicated, in file order."""
    seen: set[str] = set()
    phrases: list[str] = []
    for name in VOCABULARY_FILES:
        path = resource_path("vocabulary", name)
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text and not text.startswith("#") and text.lower() not in seen:
                seen.add(text.lower())
                phrases.append(text)
    return tuple(phrases)
