"""The Porto demo as stored: households estimated to the census, inside their buildings."""

from __future__ import annotations

from sqlalchemy import Engine, text


def test_households_match_census_divided_by_household_size(porto_engine: Engine) -> None:
    with porto_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.code, c.population, count(h.id), sum(h.size) FROM community c "
                "JOIN building b ON b.community_id = c.id JOIN household h ON h.building_id = b.id "
                "GROUP BY c.code, c.population ORDER BY c.code"
            )
        ).all()
    assert len(rows) == 4
    for _code, population, households, people in rows:
        assert households == round(population / 2.3)
        assert people == population


def test_every_household_is_inside_its_building_and_flagged(porto_engine: Engine) -> None:
    with porto_engine.connect() as conn:
        outside, unflagged = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE NOT ST_Covers(b.geom, h.geom)), "
                "count(*) FILTER (WHERE NOT h.estimated) "
                "FROM household h JOIN building b ON b.id = h.building_id"
            )
        ).one()
    assert (outside, unflagged) == (0, 0)


def test_demo_hierarchy_has_one_street_of_four_parishes(porto_engine: Engine) -> None:
    with porto_engine.connect() as conn:
        streets = conn.execute(text("SELECT code FROM street")).scalars().all()
        uncovered = conn.execute(
            text(
                "SELECT count(*) FROM community c JOIN street s ON s.id = c.street_id "
                "WHERE NOT ST_Covers(ST_Buffer(s.geom, 1e-9), c.geom)"
            )
        ).scalar_one()
    assert streets == ["PORTO-CH"]
    assert uncovered == 0


def test_metric_crs_is_the_utm_zone_of_porto(porto_engine: Engine) -> None:
    with porto_engine.connect() as conn:
        epsg = conn.execute(
            text("SELECT value FROM deployment_setting WHERE key = 'metric_epsg'")
        ).scalar_one()
    assert epsg == "32629"
