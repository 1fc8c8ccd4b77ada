"""The declarative base every table shares: WGS-84 geometry with GiST indexes, stable names."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _geom(kind: str) -> Mapped[object]:
    # spatial_index=True makes GeoAlchemy2 create the GiST index with the table.
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=True), nullable=False)


class Coded:
    """A record that people and files name by a stable code: an area of the hierarchy, a
    department, a category. Its surrogate key, the code and the name shown come first in the
    table (``sort_order``), as they always have."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    code: Mapped[str] = mapped_column(String(64), unique=True, sort_order=-1)
    name: Mapped[str] = mapped_column(String(200), sort_order=-1)
