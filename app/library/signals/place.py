"""Places: EXIF GPS -> city, region, country, offline, with the ``reverse_geocode`` package (GeoNames
cities of 1,000+ people, shipped inside its wheel as ``geocode.gz``; it would download only if that file
were missing, which a wheel install never is). Loading takes about 2 s (scipy KD-tree over ~150k
places), once per process and only when the first photo with GPS comes; a lookup is well under 1 ms.
``place_of`` reads the package's loaded data (``GeocodeData._tree``, ``_locations``, ``_countries``) to
compare nearby places, so the dependency is kept below 2."""
from __future__ import annotations

import importlib.util
import math
import re
import threading
from typing import ClassVar

from PIL import Image

from app.library.signals.base import (
    CHOICE,
    EQUALS_EACH_PART,
    DetailRow,
    FactFilter,
    SignalDeclaration,
    SignalOutput,
)
from app.library.signals.exif import read_exif

INSTALL_HINT = "pip install reverse_geocode"
# The nearest GeoNames place further away than this is not where the photo was taken (open sea, desert).
MAX_DISTANCE_KM = 150.0
# Places this close compete to name the photo's city (``place_of``); the nearest this many are looked at.
CITY_RADIUS_KM = 25.0
CANDIDATES = 64

_lock = threading.Lock()
_geocoder = None


def geocoder():
    """The loaded reverse geocoder (built once per process, thread-safe)."""
    global _geocoder
    with _lock:
        if _geocoder is None:
            import reverse_geocode

            _geocoder = reverse_geocode.GeocodeData()
        return _geocoder


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def _name(location: dict) -> str:
    # GeoNames lists the arrondissements of Paris, Lyon and Marseille as places ("Lyon 01"): name the city
    return re.sub(r"\s+\d{2}$", "", location.get("city") or "")


def place_of(lat: float, lon: float) -> dict[str, str] | None:
    """{city, locality, region, country, country_code} of a position, or None when no known place is near.

    GeoNames' places of 1,000+ people include city quarters ("Porte Saint-Denis", "Times Square", "Mitte"),
    so the nearest place is often a quarter. ``city`` is the place that best explains the position by a
    gravity rule (population / distance², distances under 1 km counted as 1 km, among the places within
    ``CITY_RADIUS_KM``): Paris for a photo in a Paris quarter, Versailles or Neuilly for one taken there.
    ``locality`` is the nearest place when it is another one (the quarter)."""
    data = geocoder()
    _, indices = data._tree.query([(lat, lon)], k=CANDIDATES)
    near = []
    for index in indices[0]:
        location = data._locations[int(index)]
        distance = distance_km(lat, lon, location["latitude"], location["longitude"])
        if distance <= CITY_RADIUS_KM:
            near.append((distance, location))
    if not near:  # nothing within the city radius: the nearest place, unless it is too far
        nearest = data._locations[int(indices[0][0])]
        distance = distance_km(lat, lon, nearest["latitude"], nearest["longitude"])
        if distance > MAX_DISTANCE_KM:
            return None
        near = [(distance, nearest)]
    near.sort(key=lambda item: item[0])
    city = max(near, key=lambda item: (item[1].get("population") or 0) / max(item[0], 1.0) ** 2)[1]
    nearest = near[0][1]
    code = city.get("country_code") or ""
    place = {"city": _name(city), "locality": _name(nearest) if _name(nearest) != _name(city) else "",
             "region": city.get("state") or "", "country": data._countries.get(code, ""), "country_code": code}
    return {k: v for k, v in place.items() if v}


PLACE_KEYS = ("city", "locality", "region", "country", "country_code")


def place_row(facts: dict) -> str:
    """The detail pane's place: "Porte Saint-Denis, Paris, Île-de-France, France"."""
    return ", ".join(dict.fromkeys(str(facts[k]) for k in ("locality", "city", "region", "country") if facts.get(k)))


def place_choices(rows: list[tuple[tuple[str, ...], int]]) -> list[tuple[str, int]]:
    """(country, city) groups -> "Paris, France" choices, most photos first; then each country of several
    cities as a choice of its own ("France"), after the cities."""
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))
    choices = [(", ".join(p for p in (city, country) if p), count) for (country, city), count in ordered]
    countries: dict[str, list[int]] = {}
    for (country, _), count in ordered:
        countries.setdefault(country, []).append(count)
    return choices + sorted(((country, sum(counts)) for country, counts in countries.items() if len(counts) > 1),
                            key=lambda item: (-item[1], item[0]))


class PlaceSignal:
    """City, region and country from the photo's GPS position; photos without GPS get no facts."""

    name: ClassVar[str] = "place"
    version: ClassVar[int] = 2  # 2: the city around a quarter (gravity rule), arrondissements named after it
    second_pass: ClassVar[bool] = False
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        display_name="places",
        fact_keys=("lat", "lon", *PLACE_KEYS),
        rows=(DetailRow("Place", place_row),),
        hit_facts=("city", "country"),
        filters=(FactFilter("place", EQUALS_EACH_PART, PLACE_KEYS, control=CHOICE, label="All places",
                            help="only photos taken there: a city, region, country or country code (\"Paris\", "
                                 "\"Paris, France\"); `cots places` lists them",
                            tooltip="Where the photo was taken (from its GPS position)",
                            choice_keys=("country", "city"), choice_list=place_choices),),
    )

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("reverse_geocode") is None:
            return f"place names need the reverse_geocode package: {INSTALL_HINT}"
        return None

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        facts = read_exif(path)
        out = SignalOutput()
        if facts.lat is None or facts.lon is None:
            return out
        out.facts.update({"lat": round(facts.lat, 6), "lon": round(facts.lon, 6)})
        place = place_of(facts.lat, facts.lon)
        if place:
            out.facts.update(place)
            out.text = " ".join(dict.fromkeys(place[k] for k in ("locality", "city", "region", "country")
                                              if k in place))
        return out
