"""Safe zones around an elder's home and the events staff are told about, as pure functions.

An enrolled elder has one safe zone: by default their home grid grown by 200 m, or a circle
(centre and radius). Each new fix, and each timer tick without one, goes through
:func:`evaluate`, which takes the previous :class:`ZoneState` and returns the next one and
the events to tell staff about:

``left_zone``    the elder is more than ``exit_margin_m`` (10 m) outside the zone
``returned``     after leaving, the elder is back more than ``return_margin_m`` (10 m) inside
``no_fix``       no fix for ``no_fix_minutes`` (30): the device is off, broken or indoors
``low_battery``  the battery fell below ``low_battery_pct`` (20 %)
``sos``          the device raised an alarm (``alarm=sos``, ``fall`` …)

Every event is raised once per episode, because staff who get the same alert on every fix
stop reading alerts: one ``left_zone`` until the elder has ``returned``; one ``low_battery``
until the level is back above the threshold plus ``battery_hysteresis_pct`` (5 points); one
``no_fix`` until a fix arrives; one ``sos`` per alarm, however many consecutive fixes repeat it.

Why margins: GPS fixes wander 5–30 m around the true position, so an elder standing at the
edge of the zone would otherwise leave and return every few fixes. Leaving needs a signed
distance above ``+exit_margin_m``, returning one below ``-return_margin_m``; in the 20 m band
between, the previous answer stands. A circle's radius must exceed the return margin, or no
return could ever be recognised.

Fixes that arrive out of order (older than the last one seen, e.g. from a device's offline
buffer) do not change the zone state, since they no longer say where the elder is; an alarm in
one is still reported, because a missed SOS costs more than a repeated one.

Geometry is in a projected metric CRS (the caller projects each fix, in WGS-84 after
:func:`geo.care.datum.to_wgs84`, with the CRS the zone was built in); distances are metres. The
state is a small frozen value, so the caller stores it per elder and nothing here keeps any.
Privacy: one state per enrolled, consenting elder; nothing here relates elders to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.care.osmand import Fix
from geo.errors import InvalidGeometry, InvalidInput

EventKind = Literal["left_zone", "returned", "no_fix", "low_battery", "sos"]

DEFAULT_HOME_BUFFER_M = 200.0
DEFAULT_EXIT_MARGIN_M = 10.0
DEFAULT_RETURN_MARGIN_M = 10.0
DEFAULT_LOW_BATTERY_PCT = 20.0
DEFAULT_BATTERY_HYSTERESIS_PCT = 5.0
DEFAULT_NO_FIX_MINUTES = 30.0

XY = tuple[float, float]


@dataclass(frozen=True)
class SafeZone:
    """Where an elder may go without an alert: a polygon, or a circle kept exact."""

    geometry: Polygon | MultiPolygon
    centre: XY | None = None
    radius_m: float | None = None

    @classmethod
    def around_grid(
        cls, grid: BaseGeometry, *, buffer_m: float = DEFAULT_HOME_BUFFER_M
    ) -> SafeZone:
        """The default zone: the home grid grown by ``buffer_m``, so the streets round it count."""
        if not math.isfinite(buffer_m) or buffer_m < 0:
            raise InvalidInput(f"{buffer_m} is not a distance ≥ 0 m", field="buffer_m")
        if not isinstance(grid, Polygon | MultiPolygon) or grid.is_empty:
            raise InvalidGeometry(
                f"a home grid must be a non-empty polygon, got {grid.geom_type}", field="grid"
            )
        if not grid.is_valid:
            raise InvalidGeometry("the home grid is not a valid polygon", field="grid")
        grown = grid.buffer(buffer_m) if buffer_m > 0 else grid
        if not isinstance(grown, Polygon | MultiPolygon):  # pragma: no cover - shapely contract
            raise InvalidGeometry("growing the home grid did not give a polygon", field="grid")
        return cls(geometry=grown)

    @classmethod
    def circle(cls, x: float, y: float, radius_m: float) -> SafeZone:
        """A zone drawn by hand: ``radius_m`` around a point, e.g. a day-care centre."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput(f"({x}, {y}) is not a finite point", field="centre")
        if not math.isfinite(radius_m) or radius_m <= 0:
            raise InvalidInput(f"{radius_m} is not a radius > 0 m", field="radius_m")
        polygon = Point(x, y).buffer(radius_m, quad_segs=32)
        return cls(geometry=polygon, centre=(x, y), radius_m=radius_m)

    def signed_distance(self, x: float, y: float) -> float:
        """Metres outside the zone (> 0), or inside it, from its edge (< 0)."""
        if self.centre is not None and self.radius_m is not None:
            return math.hypot(x - self.centre[0], y - self.centre[1]) - self.radius_m
        point = Point(x, y)
        boundary_distance = float(shapely.distance(self.geometry.boundary, point))
        return -boundary_distance if self.geometry.covers(point) else boundary_distance


MAX_ZONE_RADIUS_M = 50_000.0
"""A zone fits in a circle of this radius (the largest circle zone accepted): a zone wider
than that, e.g. the whole world, would never raise an exit alert."""


@dataclass(frozen=True)
class HomeCheck:
    """How a new safe zone stands to the elder's home, for the audit log."""

    contains_home: bool
    home_outside_m: float | None  # metres from the home to the zone's edge when outside
    forced: bool


def check_zone_for_home(
    zone: SafeZone,
    home: XY | None,
    *,
    force: bool = False,
    field: str,
    max_radius_m: float = MAX_ZONE_RADIUS_M,
) -> HomeCheck:
    """Refuse a safe zone that cannot be what staff meant, naming ``field`` (what was sent).

    A zone must contain the home (``home``, metric, None if the household is gone), because a
    zone drawn with lon and lat swapped, or around the wrong place, would raise an exit alert
    on every fix, or none when it matters; ``force`` accepts it anyway (an elder spending the
    day at a care centre), and the caller audits that. Whatever ``force`` says, the zone must
    be finite and fit in a circle of ``max_radius_m``.
    """
    geometry = zone.geometry
    bounds = geometry.bounds
    if geometry.is_empty or not all(math.isfinite(v) for v in bounds):
        raise InvalidGeometry(
            "the zone lies where the district's metric CRS cannot measure it; "
            "give WGS-84 lon, lat near the elder's home",
            field=field,
        )
    radius = float(shapely.minimum_bounding_radius(geometry))
    if zone.radius_m is not None:
        radius = zone.radius_m
    if not math.isfinite(radius) or radius > max_radius_m * (1 + 1e-6):
        raise InvalidGeometry.said(
            "zone_too_wide",
            km=f"{radius / 1000:,.1f}",
            max_km=f"{max_radius_m / 1000:g}",
            field=field,
        )
    if home is None:
        if force:
            return HomeCheck(contains_home=False, home_outside_m=None, forced=True)
        raise InvalidInput(
            "the elder's home household is gone, so the zone cannot be checked against it; "
            "give force=true (audited) to set it anyway",
            field="force",
        )
    outside = zone.signed_distance(*home)
    if outside <= 0:
        return HomeCheck(contains_home=True, home_outside_m=None, forced=force)
    if not force:
        raise InvalidGeometry.said("zone_without_home", outside=f"{outside:,.0f}", field=field)
    return HomeCheck(contains_home=False, home_outside_m=outside, forced=True)


@dataclass(frozen=True)
class MetricFix:
    """The parts of a fix the zone logic needs, its position projected to metres."""

    x: float
    y: float
    time: datetime
    battery: float | None = None
    alarm: str | None = None

    @classmethod
    def from_fix(cls, fix: Fix, *, x: float, y: float) -> MetricFix:
        """Pair a parsed fix with its projected position (the caller owns the projection)."""
        return cls(x=x, y=y, time=fix.time, battery=fix.battery, alarm=fix.alarm)


@dataclass(frozen=True)
class ZoneState:
    """What :func:`evaluate` remembers between fixes for one elder; start from ``ZoneState()``.

    A new state assumes the elder is inside the zone, so a first fix outside it raises
    ``left_zone`` at once.
    """

    outside: bool = False
    last_fix_time: datetime | None = None
    last_position: XY | None = None
    low_battery: bool = False
    no_fix: bool = False
    alarm: str | None = None
    battery: float | None = None
    """Per cent, from the newest report that gave one: what staff are shown, whether it came
    with a fix or a keep-alive (a watch indoors sends keep-alives for hours)."""


@dataclass(frozen=True)
class ZoneEvent:
    """One thing staff should hear about: what, when (fix time, or check time for no_fix), where.

    ``position`` is the metric position of the fix, or the last known one for ``no_fix``
    (``None`` if there never was one); ``detail`` carries the alarm text for ``sos``.
    """

    kind: EventKind
    time: datetime
    position: XY | None
    detail: str | None = None


def stale(last_fix_time: datetime | None, now: datetime, minutes: float) -> bool:
    """Whether a device has been silent too long to know where its wearer is.

    No fix at all counts as stale. Exactly ``minutes`` old is not yet stale.
    """
    if last_fix_time is None:
        return True
    return now - last_fix_time > timedelta(minutes=minutes)


def evaluate(
    previous_state: ZoneState | None,
    fix: MetricFix | None,
    now: datetime,
    zone: SafeZone,
    *,
    low_battery_pct: float = DEFAULT_LOW_BATTERY_PCT,
    no_fix_minutes: float = DEFAULT_NO_FIX_MINUTES,
    exit_margin_m: float = DEFAULT_EXIT_MARGIN_M,
    return_margin_m: float = DEFAULT_RETURN_MARGIN_M,
    battery_hysteresis_pct: float = DEFAULT_BATTERY_HYSTERESIS_PCT,
) -> tuple[ZoneState, list[ZoneEvent]]:
    """Advance one elder's state by a fix (or by a timer tick, ``fix=None``) and list new events.

    Events come in a fixed order: ``sos``, ``left_zone`` / ``returned``, ``low_battery``,
    ``no_fix``, so the most urgent is first.
    """
    _check_margins(exit_margin_m, return_margin_m, zone)
    _require_aware(now, "now")
    if fix is not None:
        _require_aware(fix.time, "fix.time")
    state = previous_state if previous_state is not None else ZoneState()
    events: list[ZoneEvent] = []
    if fix is not None:
        state = _apply_fix(
            state,
            fix,
            zone,
            events,
            low_battery_pct=low_battery_pct,
            exit_margin_m=exit_margin_m,
            return_margin_m=return_margin_m,
            battery_hysteresis_pct=battery_hysteresis_pct,
        )
    # Staleness is only judged from a first fix on: before it, the device may not be worn yet.
    if state.last_fix_time is not None:
        if stale(state.last_fix_time, now, no_fix_minutes):
            if not state.no_fix:
                events.append(ZoneEvent("no_fix", now, state.last_position))
                state = replace(state, no_fix=True)
        elif state.no_fix:
            state = replace(state, no_fix=False)
    return state, events


def _apply_fix(
    state: ZoneState,
    fix: MetricFix,
    zone: SafeZone,
    events: list[ZoneEvent],
    *,
    low_battery_pct: float,
    exit_margin_m: float,
    return_margin_m: float,
    battery_hysteresis_pct: float,
) -> ZoneState:
    if not (math.isfinite(fix.x) and math.isfinite(fix.y)):
        raise InvalidInput(f"({fix.x}, {fix.y}) is not a finite position", field="fix")
    position = (fix.x, fix.y)
    alarm = fix.alarm.strip() if fix.alarm and fix.alarm.strip() else None
    if state.last_fix_time is not None and fix.time < state.last_fix_time:
        if alarm is not None:
            events.append(ZoneEvent("sos", fix.time, position, detail=alarm))
        return state

    if alarm is not None and alarm != state.alarm:
        events.append(ZoneEvent("sos", fix.time, position, detail=alarm))

    outside = state.outside
    distance = zone.signed_distance(fix.x, fix.y)
    if not outside and distance > exit_margin_m:
        outside = True
        events.append(ZoneEvent("left_zone", fix.time, position))
    elif outside and distance < -return_margin_m:
        outside = False
        events.append(ZoneEvent("returned", fix.time, position))

    low_battery = state.low_battery
    if fix.battery is not None:
        if not low_battery and fix.battery < low_battery_pct:
            low_battery = True
            events.append(ZoneEvent("low_battery", fix.time, position, detail=f"{fix.battery:g}%"))
        elif low_battery and fix.battery > low_battery_pct + battery_hysteresis_pct:
            low_battery = False

    return replace(
        state,
        outside=outside,
        last_fix_time=fix.time,
        last_position=position,
        low_battery=low_battery,
        alarm=alarm,
        battery=state.battery if fix.battery is None else fix.battery,
    )


def _check_margins(exit_margin_m: float, return_margin_m: float, zone: SafeZone) -> None:
    for name, value in (("exit_margin_m", exit_margin_m), ("return_margin_m", return_margin_m)):
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"{value} is not a distance ≥ 0 m", field=name)
    if zone.radius_m is not None and zone.radius_m <= return_margin_m:
        raise InvalidInput(
            f"a {zone.radius_m:g} m circle has no point {return_margin_m:g} m inside its edge, "
            "so a return could never be recognised",
            field="radius_m",
        )


def _require_aware(value: datetime, name: str) -> None:
    """Naive and aware times cannot be compared; say so by name instead of a TypeError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("must be timezone-aware", field=name)
