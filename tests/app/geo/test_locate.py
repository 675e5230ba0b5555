"""Shared locations to countries: the nearest listed city, offline."""

from __future__ import annotations

import math

import pytest

from bot.geo import locate


@pytest.mark.parametrize(
    ("where", "latitude", "longitude", "country"),
    [
        ("Puerta del Sol, Madrid", 40.4168, -3.7038, "ES"),
        ("Geneva", 46.2044, 6.1432, "CH"),
        ("Calais", 50.9513, 1.8587, "FR"),
        ("Dover", 51.1279, 1.3134, "GB"),
        ("Bangkok", 13.7563, 100.5018, "TH"),
        ("Sydney Opera House", -33.8568, 151.2153, "AU"),
        ("Stanley, Falkland Islands", -51.6938, -57.8570, "FK"),
        ("Pristina", 42.6629, 21.1655, "XK"),
        ("Gibraltar", 36.1408, -5.3536, "GI"),
        ("Suva", -18.1248, 178.4501, "FJ"),
        # Across the antimeridian from the nearest Fijian town.
        ("east of Taveuni", -16.80, -179.99, "FJ"),
        ("a ferry between Dover and Calais, nearer France", 50.99, 1.75, "FR"),
    ],
)
def test_a_point_gets_the_country_of_its_nearest_city(
    where: str, latitude: float, longitude: float, country: str
) -> None:
    assert locate.country_at(latitude, longitude) == country, where


@pytest.mark.parametrize(
    ("where", "latitude", "longitude"),
    [
        ("mid-Atlantic", 30.0, -40.0),
        ("South Pacific", -40.0, -130.0),
        ("North Pole", 90.0, 0.0),
        ("South Pole", -90.0, 0.0),
    ],
)
def test_far_from_any_city_no_country_is_guessed(
    where: str, latitude: float, longitude: float
) -> None:
    assert locate.nearest_city(latitude, longitude) is None, where


def test_nearest_city_names_the_city_and_its_distance() -> None:
    place = locate.nearest_city(48.8584, 2.2945)  # the Eiffel Tower

    assert place is not None
    assert place.country == "FR"
    assert place.city == "Paris" or place.distance_km < 5
    assert 0 <= place.distance_km < 10


def test_the_distance_limit_is_respected() -> None:
    # Central Toulouse: a city lies within 50 km, none within a metre.
    assert locate.nearest_city(43.60, 1.44, max_distance_km=0.001) is None
    assert locate.country_at(43.60, 1.44, max_distance_km=50) == "FR"


def test_the_answer_matches_a_brute_force_search() -> None:
    index = locate._index()
    for latitude, longitude in [(-33.9, 18.4), (64.1, -21.9), (1.29, 103.85), (19.4, -99.1)]:
        distances = [
            locate.haversine_km(latitude, longitude, lat, lon)
            for lat, lon in zip(index.latitudes, index.longitudes, strict=True)
        ]
        best = min(range(len(distances)), key=distances.__getitem__)
        place = locate.nearest_city(latitude, longitude)
        assert place is not None
        assert place.distance_km == pytest.approx(distances[best])
        assert place.country == index.countries[best]


@pytest.mark.parametrize(
    ("latitude", "longitude"), [(91.0, 0.0), (0.0, 181.0), (math.nan, 0.0), (0.0, math.inf)]
)
def test_coordinates_off_the_globe_are_refused(latitude: float, longitude: float) -> None:
    with pytest.raises(ValueError):
        locate.nearest_city(latitude, longitude)


def test_the_index_is_built_once() -> None:
    assert locate._index() is locate._index()


def test_country_names() -> None:
    assert locate.country_name("es") == "Spain"
    assert locate.country_name("GB") == "United Kingdom"
    assert locate.country_name("ZZ") == "ZZ"
