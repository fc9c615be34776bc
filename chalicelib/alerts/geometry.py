"""Plain-Python geometry on (latitude, longitude) degrees, shared by the CAP parser (which drops
shapes without area) and the area matching. Polygons are treated as planar in degrees, exact enough
at a comune's scale and with no projection library to load on a cold start; polygons crossing the
antimeridian are not supported (no Italian alert does)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from chalicelib.alerts.model import Circle, Point

EARTH_RADIUS_KM = 6371.0088
_MIN_CORNERS = 3

Polygon = Sequence[Point]
Segment = tuple[Point, Point]


# --- polygons -------------------------------------------------------------------------------------


def is_degenerate(polygon: Polygon) -> bool:
    """Fewer than three distinct corners, or all of them on one line: it encloses nothing. Real feeds
    carry such polygons (a repeated point, a two-point "line"); they never match."""
    if len(set(polygon)) < _MIN_CORNERS:
        return True
    return twice_area(polygon) == 0.0


def twice_area(polygon: Polygon) -> float:
    """Twice the area enclosed, in square degrees (the shoelace formula)."""
    return abs(sum(a[1] * b[0] - b[1] * a[0] for a, b in _edges(polygon)))


def _edges(polygon: Polygon) -> Iterator[Segment]:
    """Each side once, closing the ring whether or not the document repeats the first point."""
    count = len(polygon)
    for index in range(count):
        start, end = polygon[index], polygon[(index + 1) % count]
        if start != end:
            yield start, end


def polygon_contains(polygon: Polygon, point: Point) -> bool:
    """Even-odd ray casting, with a point on the border counted inside: a comune on the edge of an alert
    polygon is warned rather than forgotten."""
    if is_degenerate(polygon):
        return False
    lat, lon = point
    inside = False
    for start, end in _edges(polygon):
        if _on_segment(point, start, end):
            return True
        # Half-open rule on latitude, so a ray through a vertex counts it once.
        if (start[0] > lat) != (end[0] > lat):
            crossing_lon = start[1] + (lat - start[0]) * (end[1] - start[1]) / (end[0] - start[0])
            if lon < crossing_lon:
                inside = not inside
    return inside


def polygons_intersect(first: Polygon, second: Polygon) -> bool:
    """Whether two polygons share any point. If no sides cross, one lies inside the other or they are
    apart, and one corner of each tells which."""
    if is_degenerate(first) or is_degenerate(second):
        return False
    first_box, second_box = _box(first), _box(second)
    if not _boxes_overlap(first_box, second_box):
        return False
    if polygon_contains(second, first[0]) or polygon_contains(first, second[0]):
        return True
    # Only sides that reach the other polygon's box can cross it: with a small comune and a large
    # alert polygon, that leaves a handful of pairs instead of every side against every side.
    near_first = [edge for edge in _edges(first) if _boxes_overlap(_box(edge), second_box)]
    near_second = [edge for edge in _edges(second) if _boxes_overlap(_box(edge), first_box)]
    return any(_segments_meet(a, b) for a in near_first for b in near_second)


Box = tuple[float, float, float, float]  # min lat, min lon, max lat, max lon


def _box(points: Sequence[Point]) -> Box:
    lats = [point[0] for point in points]
    lons = [point[1] for point in points]
    return min(lats), min(lons), max(lats), max(lons)


def _boxes_overlap(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _orientation(a: Point, b: Point, c: Point) -> float:
    """Positive if a→b→c turns one way, negative the other, zero when the three are in line."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(point: Point, start: Point, end: Point) -> bool:
    if _orientation(start, end, point) != 0.0:
        return False
    return min(start[0], end[0]) <= point[0] <= max(start[0], end[0]) and min(start[1], end[1]) <= point[
        1
    ] <= max(start[1], end[1])


def _segments_meet(first: Segment, second: Segment) -> bool:
    (a, b), (c, d) = first, second
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    # Touching or overlapping in line: an end of one lies on the other.
    return _on_segment(c, a, b) or _on_segment(d, a, b) or _on_segment(a, c, d) or _on_segment(b, c, d)


# --- circles --------------------------------------------------------------------------------------


def great_circle_km(first: Point, second: Point) -> float:
    """Haversine distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*first, *second))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def circle_contains(circle: Circle, point: Point) -> bool:
    return great_circle_km(circle.center, point) <= circle.radius_km


def circle_meets_polygon(circle: Circle, polygon: Polygon) -> bool:
    """Whether a circle and a polygon share any point: the centre inside, or a side within the radius."""
    if is_degenerate(polygon):
        return False
    if polygon_contains(polygon, circle.center):
        return True
    return any(_km_to_segment(circle.center, edge) <= circle.radius_km for edge in _edges(polygon))


def _km_to_segment(center: Point, edge: Segment) -> float:
    """Distance from `center` to a side, on a plane tangent at the centre (east/north kilometres): exact
    enough for alert circles of tens of kilometres. The closest point is then measured on the sphere."""
    scale = math.radians(EARTH_RADIUS_KM)
    cos_lat = math.cos(math.radians(center[0]))

    def plane(point: Point) -> tuple[float, float]:
        return (point[1] - center[1]) * scale * cos_lat, (point[0] - center[0]) * scale

    (ax, ay), (bx, by) = plane(edge[0]), plane(edge[1])
    length_squared = (bx - ax) ** 2 + (by - ay) ** 2
    share = (
        0.0
        if length_squared == 0
        else max(0.0, min(1.0, -(ax * (bx - ax) + ay * (by - ay)) / length_squared))
    )
    closest = (
        edge[0][0] + share * (edge[1][0] - edge[0][0]),
        edge[0][1] + share * (edge[1][1] - edge[0][1]),
    )
    return great_circle_km(center, closest)
