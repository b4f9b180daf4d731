"""Branch hours and addresses: a small table of DEMO branches and the lookups callers ask for.

DEMO DATA: the branches, addresses, phone numbers and ZIP positions below are made up for the
embedded voicebot (555-01xx numbers are reserved for fiction). A deployment replaces ``BRANCHES``
and ``ZIP_POSITIONS`` with its own.

``find_branches(location)`` answers "hours of the Riverside branch", "branch near 62704" and
"nearest branch": a branch name, neighbourhood, street or city picks that branch; a ZIP code
picks the nearest branch by straight-line distance; nothing usable (or just "nearest") returns
no match, so the bot asks where the caller is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Hours = tuple[str, str] | None


@dataclass(frozen=True)
class Branch:
    """One branch. ``hours`` has seven entries, Monday first: ("09:00", "17:00") or None when closed."""

    branch_id: str
    name: str
    address: str
    city: str
    zip_code: str
    phone: str
    latitude: float
    longitude: float
    hours: tuple[Hours, ...]
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise ValueError(f"branch {self.branch_id}: hours needs 7 days, got {len(self.hours)}")

    def hours_text(self) -> str:
        """Opening hours in words, consecutive days with equal hours grouped.

        "Monday to Friday 9 a.m. to 5 p.m., Saturday 9 a.m. to 1 p.m., closed Sunday".
        """
        groups: list[tuple[int, int, Hours]] = []
        for index, hours in enumerate(self.hours):
            if groups and groups[-1][2] == hours:
                groups[-1] = (groups[-1][0], index, hours)
            else:
                groups.append((index, index, hours))
        parts = []
        for first, last, hours in groups:
            if first == last:
                days = DAYS[first]
            else:
                days = f"{DAYS[first]} {'and' if last == first + 1 else 'to'} {DAYS[last]}"
            if hours is None:
                parts.append(f"closed {days}")
            else:
                parts.append(f"{days} {_clock(hours[0])} to {_clock(hours[1])}")
        if len(groups) == 1 and groups[0][2] is not None:
            return f"every day {_clock(groups[0][2][0])} to {_clock(groups[0][2][1])}"
        return ", ".join(parts)

    def full_address(self) -> str:
        """Street, city and ZIP code."""
        return f"{self.address}, {self.city} {self.zip_code}"


def _clock(hhmm: str) -> str:
    hour, minute = (int(part) for part in hhmm.split(":"))
    suffix = "a.m." if hour < 12 else "p.m."
    shown = hour % 12 or 12
    return f"{shown} {suffix}" if minute == 0 else f"{shown}:{minute:02d} {suffix}"


def _week(monday_to_friday: Hours, saturday: Hours, sunday: Hours, friday: Hours | str = "same") -> tuple[Hours, ...]:
    """Seven days of hours from the usual pattern; ``friday`` differs when given."""
    fri = monday_to_friday if isinstance(friday, str) else friday
    return (*(monday_to_friday,) * 4, fri, saturday, sunday)


BRANCHES: tuple[Branch, ...] = (
    Branch(
        "downtown",
        "Downtown",
        "100 Main Street",
        "Springfield",
        "62701",
        "217-555-0150",
        39.8017,
        -89.6436,
        _week(("09:00", "17:00"), ("09:00", "13:00"), None),
        ("main", "main street", "city center", "centre", "head office"),
    ),
    Branch(
        "riverside",
        "Riverside",
        "2200 River Road",
        "Springfield",
        "62704",
        "217-555-0151",
        39.7794,
        -89.6850,
        _week(("08:30", "18:00"), ("09:00", "14:00"), None),
        ("river road", "river"),
    ),
    Branch(
        "northgate",
        "Northgate",
        "45 North Avenue",
        "Springfield",
        "62702",
        "217-555-0152",
        39.8312,
        -89.6410,
        _week(("09:00", "17:00"), ("10:00", "14:00"), None, friday=("09:00", "19:00")),
        ("north avenue", "north"),
    ),
    Branch(
        "airport",
        "Airport",
        "1 Terminal Drive",
        "Springfield",
        "62707",
        "217-555-0153",
        39.8441,
        -89.6779,
        _week(("07:00", "21:00"), ("07:00", "21:00"), ("07:00", "21:00")),
        ("terminal", "airport drive"),
    ),
    Branch(
        "chatham",
        "Chatham",
        "300 Plummer Boulevard",
        "Chatham",
        "62629",
        "217-555-0154",
        39.6761,
        -89.7043,
        _week(("09:00", "17:00"), None, None),
        ("plummer", "plummer boulevard"),
    ),
)

# Approximate centres of the ZIP codes around the demo branches, for "nearest branch to 62711".
ZIP_POSITIONS: dict[str, tuple[float, float]] = {
    "62701": (39.8017, -89.6436),
    "62702": (39.8250, -89.6440),
    "62703": (39.7620, -89.6290),
    "62704": (39.7720, -89.6880),
    "62707": (39.8450, -89.6500),
    "62711": (39.7660, -89.7300),
    "62712": (39.7500, -89.5950),
    "62629": (39.6761, -89.7043),
}

_NEAREST_WORDS = {"nearest", "closest", "near", "me", "close", "to", "by", "nearby", "the", "branch", "a", "any", "my"}
# Street-type words say nothing about which branch: "elm street" must not pick "100 Main Street".
_GENERIC_WORDS = {"street", "road", "avenue", "drive", "boulevard", "center", "centre", "city", "office", "head"}
_ZIP = re.compile(r"(?<!\d)(\d{5})(?!\d)")


@dataclass(frozen=True)
class BranchMatch:
    """The answer to a lookup: the branches found (best first) and how they were picked."""

    branches: tuple[Branch, ...]
    how: str  # "name", "zip", "nearest_zip"; "unknown" when nothing matched, "none" when no place was given
    unknown_zip: str = ""


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def find_branches(location: str | None, branches: tuple[Branch, ...] = BRANCHES) -> BranchMatch:
    """Branches matching ``location``: a branch name, street, neighbourhood, city or ZIP code.

    ``None``, empty text or only "nearest"-type words match nothing (``how == "none"``): the
    caller's position is not known, so the bot should ask for a ZIP code or area. A place that
    matches no branch (or a ZIP code without a known position) gives ``how == "unknown"``.
    """
    text = (location or "").strip().lower()
    if zip_match := _ZIP.search(text):
        zip_code = zip_match[1]
        exact = tuple(b for b in branches if b.zip_code == zip_code)
        if exact:
            return BranchMatch(exact, "zip")
        position = ZIP_POSITIONS.get(zip_code)
        if position is None:
            return BranchMatch((), "unknown", unknown_zip=zip_code)
        ranked = sorted(branches, key=lambda b: _distance_km(position, (b.latitude, b.longitude)))
        return BranchMatch((ranked[0],), "nearest_zip")
    words = [w for w in _words(text) if w not in _NEAREST_WORDS]
    if not words:
        return BranchMatch((), "none")
    joined = " ".join(words)
    scored: list[tuple[int, Branch]] = []
    for branch in branches:
        names = (branch.name.lower(), branch.address.lower(), *branch.keywords)
        score = 0
        if any(name == joined or name in joined for name in names):
            score = 3
        elif set(words) & {w for name in names for w in _words(name) if not w.isdigit()} - _GENERIC_WORDS:
            score = 2
        elif branch.city.lower() in joined:
            score = 1
        if score:
            scored.append((score, branch))
    if not scored:
        return BranchMatch((), "unknown")
    best = max(score for score, _ in scored)
    return BranchMatch(tuple(b for score, b in scored if score == best), "name")
