"""Places: EXIF GPS -> city, region, country, offline, with the ``reverse_geocode`` package (GeoNames
cities of 1,000+ people, shipped inside its wheel as ``geocode.gz``; it would download only if that file
were missing, which a wheel install never is). Loading takes about 2 s (scipy KD-tree over ~150k
places), once per process and only when the first photo with GPS comes; a lookup is ~0.1 ms."""
from __future__ import annotations

import importlib.util
import math
import threading
from typing import ClassVar

from PIL import Image

from app.library.signals.base import SignalOutput
from app.library.signals.exif import read_exif

INSTALL_HINT = "pip install reverse_geocode"
# The nearest GeoNames place further away than this is not where the photo was taken (open sea, desert).
MAX_DISTANCE_KM = 150.0

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


def place_of(lat: float, lon: float) -> dict[str, str | float] | None:
    """{city, region, country, country_code} of the nearest known place, or None when it is far away."""
    found = dict(geocoder().query([(lat, lon)])[0])
    if distance_km(lat, lon, found["latitude"], found["longitude"]) > MAX_DISTANCE_KM:
        return None
    place = {"city": found.get("city") or "", "region": found.get("state") or "",
             "country": found.get("country") or "", "country_code": found.get("country_code") or ""}
    return {k: v for k, v in place.items() if v}


class PlaceSignal:
    """City, region and country from the photo's GPS position; photos without GPS get no facts."""

    name: ClassVar[str] = "place"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = False

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
            out.text = " ".join(dict.fromkeys(place[k] for k in ("city", "region", "country") if k in place))
        return out
