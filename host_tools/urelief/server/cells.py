"""Cell → position from an offline file the operator supplies, in OpenCelliD's CSV format
(`radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal`,
with or without that header line). A cell-only alert (no GNSS fix) is placed on the map at its
serving cell's position, with the cell's range as the accuracy; a cell not in the file stays a
cell (numbers only). Loaded once at start; ~60 bytes per cell in memory."""

from __future__ import annotations

import csv
from pathlib import Path

from urelief.server import logs

Key = tuple[int, int, int, int]  # mcc, mnc (as a number: OpenCelliD's `net`), area (TAC/LAC), cell


class CellLocations:
    def __init__(self, cells: dict[Key, tuple[float, float, int]] | None = None):
        self.cells = cells or {}

    @classmethod
    def load(cls, path: str | Path) -> CellLocations:
        cells: dict[Key, tuple[float, float, int]] = {}
        bad = 0
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if len(row) < 9 or row[0] == "radio":
                    continue
                try:
                    key = (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
                    lon, lat, rng = float(row[6]), float(row[7]), int(float(row[8] or 0))
                except ValueError:
                    bad += 1
                    continue
                if -90 <= lat <= 90 and -180 <= lon <= 180:
                    cells[key] = (lat, lon, max(rng, 0))
                else:
                    bad += 1
        logs.event("cell_locations_loaded", path=str(path), cells=len(cells), bad_rows=bad)
        return cls(cells)

    def locate(self, cell: dict | None) -> dict | None:
        """{lat, lon, range_m} for a report's `cell` dict, or None if the file lacks it."""
        if not cell or not self.cells:
            return None
        try:
            key = (int(cell["mcc"]), int(cell["mnc"]), int(cell["tac"]), int(cell["cell_id"]))
        except (KeyError, TypeError, ValueError):
            return None
        hit = self.cells.get(key)
        if hit is None:
            return None
        return {"lat": hit[0], "lon": hit[1], "range_m": hit[2]}
