"""People words of a query, for the faces signal's search (``FaceSignal.declares.search``).

The cots-lite image tower has no person class, so "people", "a group photo" or "selfie" cannot be
answered by the embedding alone. A query with one of these words also ranks the photos whose face
facts fit it, as one more list in the rank fusion; other queries are unchanged."""
from __future__ import annotations

import re
from dataclasses import dataclass

from app.library.signals.base import FactCondition


@dataclass(frozen=True)
class PeopleIntent:
    """What a people query asks of the faces facts: a face count range and a smallest largest-face
    share of the image (portraits and selfies have one big face)."""

    min_faces: int = 1
    max_faces: int | None = None
    min_face_area: float = 0.0


PEOPLE_WORDS: dict[str, PeopleIntent] = {
    **dict.fromkeys(("people", "person", "persons", "someone", "somebody", "human", "humans", "face", "faces",
                     "man", "men", "woman", "women", "boy", "girl", "child", "children", "kid", "kids",
                     "friend", "friends", "baby", "couple"), PeopleIntent()),
    **dict.fromkeys(("family", "families"), PeopleIntent(min_faces=2)),
    **dict.fromkeys(("group", "groups", "team", "party", "gathering"), PeopleIntent(min_faces=3)),
    **dict.fromkeys(("crowd", "crowds", "audience"), PeopleIntent(min_faces=6)),
    **dict.fromkeys(("portrait", "portraits", "headshot"), PeopleIntent(max_faces=2, min_face_area=0.02)),
    **dict.fromkeys(("selfie", "selfies"), PeopleIntent(max_faces=2, min_face_area=0.05)),
}


def people_intent(query: str) -> PeopleIntent | None:
    """The faces condition a query asks for, or None when it is not about people. With several people
    words the strictest count wins ("a group portrait": 3 faces or more)."""
    found = [PEOPLE_WORDS[w] for w in re.findall(r"\w+", query.lower()) if w in PEOPLE_WORDS]
    if not found:
        return None
    least = max(i.min_faces for i in found)
    most = min((i.max_faces for i in found if i.max_faces is not None), default=None)
    return PeopleIntent(min_faces=least, max_faces=most if most is None or most >= least else None,
                        min_face_area=max(i.min_face_area for i in found))


def people_condition(query: str) -> FactCondition | None:
    """The faces facts a query asks for (``people_intent``) as a condition storage can look up."""
    intent = people_intent(query)
    if intent is None:
        return None
    return FactCondition((("faces", intent.min_faces, intent.max_faces),
                          ("face_area_max", intent.min_face_area, None)), rank_by="face_area_max")
