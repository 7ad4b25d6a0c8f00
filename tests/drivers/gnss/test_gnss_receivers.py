"""Receivers as they are, hand-written: one short log per quirk class that the gpsd comparison
found us missing, each with the source of the fact. All run through the firmware's GNSS service
on MicroPython, line by line as the UART hands them over."""

from __future__ import annotations

import pytest

_DRIVER = r"""
import json
from gnss.service import Gnss
out = []
g = Gnss(ticks_ms=lambda: 0)
g.on_fix = lambda f: out.append([f.mode, f.iso_time(), f.lat, f.lon, f.alt_msl, f.speed, f.course])
for line in %r:
    g.feed_line(line)
g.end_epoch()
print(json.dumps(out))
"""


def _cs(body: str) -> str:
    x = 0
    for c in body:
        x ^= ord(c)
    return f"${body}*{x:02X}"


def _epochs(mpy, lines: list[str | bytes]) -> list[list]:
    raw = [s if isinstance(s, bytes) else (_cs(s) if s[0] != "$" else s).encode() for s in lines]
    return mpy.json(_DRIVER % raw)


LAT, LON = 48.1173, 11.516666667  # 4807.038 N 01131.000 E


def gga(t: str, talker: str = "GP", alt: str = "545.4") -> str:
    return f"{talker}GGA,{t},4807.038,N,01131.000,E,1,08,0.9,{alt},M,46.9,M,,"


def rmc(t: str, date: str = "311224", talker: str = "GP", speed: str = "022.4",
        course: str = "084.4") -> str:
    return f"{talker}RMC,{t},A,4807.038,N,01131.000,E,{speed},{course},{date},003.1,W,A"


def _at(e: list, time: str | None, mode: int = 3) -> None:
    assert e[0] == mode and e[1] == time, e
    assert abs(e[2] - LAT) < 1e-7 and abs(e[3] - LON) < 1e-7, e


# --- the epoch bug (issue 9): a receiver without sky sends its sentences with the time empty; the
# first epoch with a time was merged into the last empty one and lost (its GGA's quality 0 won).
NO_SKY = {
    "GGA": "GPGGA,,,,,,0,00,99.99,,,,,,",
    "RMC": "GPRMC,,V,,,,,,,,,,N",
    "GLL": "GPGLL,,,,,,V,N",
}


@pytest.mark.parametrize("empty,timed", [
    (["GGA"], ["RMC"]),  # GGA only without sky, RMC first once it has one (u-blox order)
    (["RMC", "GGA"], ["GLL"]),  # GLL-only output after an RMC/GGA cold start
    (["GGA", "RMC"], ["GLL", "RMC"]),
    (["RMC", "GGA"], ["RMC", "GGA"]),
])
def test_first_epoch_with_a_time_after_no_sky_is_kept(mpy, empty, timed):
    def timed_epoch(t):
        return [{"RMC": rmc(t), "GGA": gga(t), "GLL": f"GPGLL,4807.038,N,01131.000,E,{t},A,A"}[k]
                for k in timed]
    lines = [NO_SKY[k] for k in empty] * 3 + timed_epoch("120000.00") + timed_epoch("120001.00")
    got = _epochs(mpy, lines)
    assert len(got) == 5, got  # 3 without sky, then 2 with a time
    assert all(e[0] == 1 and e[1] is None for e in got[:3])
    has_date = "RMC" in timed
    for e, t in zip(got[3:], ("12:00:00", "12:00:01"), strict=False):
        _at(e, f"2024-12-31T{t}.000Z" if has_date else None, 3 if "GGA" in timed else 2)


# --- whole receivers we gave no epoch at all
def test_any_talker_is_a_talker(mpy):
    # NMEA 0183 4.11 names GQ for QZSS, Quectel's manuals PQ, 4.10 GB/GA/GL/GN, the standard
    # lets an integrated system use its own (IN integrated navigation): every capital pair counts.
    for talker in ("GN", "GB", "BD", "GQ", "QZ", "PQ", "IN"):
        got = _epochs(mpy, [rmc("120000.00", talker=talker), gga("120000.00", talker)])
        assert len(got) == 1, (talker, got)
        _at(got[0], "2024-12-31T12:00:00.000Z")


def test_sentences_without_checksum_are_taken_when_whole(mpy):
    # NMEA 0183 before 2.0 made the checksum optional; gpsd's packet lexer takes a sentence with
    # none ("checksum passed or not present"). A line cut short without one is still refused.
    lines = [b"$GPRMC,120000.00,A,4807.038,N,01131.000,E,022.4,084.4,311224,003.1,W",
             b"$GPGGA,120000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
             b"$GPRMC,120001.00,A,4807.038,N,011"]  # cut: too few fields, not a fix at 0.11 deg
    got = _epochs(mpy, lines)
    assert len(got) == 1
    _at(got[0], "2024-12-31T12:00:00.000Z")
    assert got[0][4] == 545.4 and abs(got[0][5] - 22.4 * 1852 / 3600) < 1e-3


def test_lowercase_checksum_digits(mpy):
    # NMEA 0183 specifies the checksum's hex digits upper case; receivers send lower case (gpsd
    # compares case-blind, toupper() in packet.c).
    s = _cs(rmc("120000.00"))
    got = _epochs(mpy, [(s[:-2] + s[-2:].lower()).encode()])
    _at(got[0], "2024-12-31T12:00:00.000Z", 2)


def test_sentences_run_together_on_one_line(mpy):
    # Receivers behind a USB bridge or a logger that drops line ends: one long line of several
    # sentences; each begins with '$' right after the previous '*hh'.
    line = (_cs(rmc("120000.00")) + _cs(gga("120000.00")) + _cs(rmc("120001.00"))).encode()
    got = _epochs(mpy, [line])
    assert len(got) == 2
    _at(got[0], "2024-12-31T12:00:00.000Z")
    _at(got[1], "2024-12-31T12:00:01.000Z", 2)


# --- dates past a GPS week-number rollover
def test_week_rollover_victims_are_moved_on_1024_weeks(mpy):
    # Telit's week-rollover application note (cited in gpsd's april6_2019 log): after 2019-04-06
    # older firmware counts from 1999-08-22 again; RMC then says ddmm99. gpsd's timebase.c moves
    # dates before 2017 (18 leap seconds) on by 1024 weeks; so do we.
    got = _epochs(mpy, [rmc("000231.00", date="220899"), gga("000231.00"),
                        "GPZDA,000232.00,22,08,1999,00,00", gga("000232.00")])
    _at(got[0], "2019-04-07T00:02:31.000Z")
    _at(got[1], "2019-04-07T00:02:32.000Z")


def test_two_digit_years(mpy):
    # RMC's ddmmyy: gpsd's merge_ddmmyy puts yy in this century and wraps 80-99 to the last; a
    # receiver reporting 79 means 2079 (true), 00 means 2000 (a victim: moved on 1024 weeks).
    got = _epochs(mpy, [rmc("120000.00", date="010179"), rmc("120001.00", date="010100")])
    assert got[0][1] == "2079-01-01T12:00:00.000Z"
    assert got[1][1] == "2019-08-17T12:00:01.000Z"


# --- speed and course from VTG
def test_speed_and_course_from_vtg_when_there_is_no_rmc(mpy):
    # NMEA 0183 2.x VTG: course,T,course,M,knots,N,km/h,K[,mode]; a GGA+VTG+GSA mix (u-blox with
    # RMC disabled) has its speed only there.
    got = _epochs(mpy, [gga("120000.00"), "GPVTG,084.4,T,087.5,M,022.4,N,041.5,K,A",
                        "GPGSA,A,3,01,02,03,04,,,,,,,,,1.5,0.9,1.2"])
    _at(got[0], None)
    assert abs(got[0][5] - 22.4 * 1852 / 3600) < 1e-3 and got[0][6] == 84.4


def test_vtg_with_its_unit_letters_left_empty(mpy):
    # Some receivers send the 2.x layout without the T/M/N/K letters; the field count (8 or 9)
    # tells it from NMEA 1.x's four fields (course true, course magnetic, knots, km/h).
    got = _epochs(mpy, [gga("120000.00"), "GPVTG,084.4,,087.5,,022.4,,041.5,,A",
                        gga("120001.00"), "GPVTG,084.4,087.5,022.4,041.5"])
    for e in got:
        assert abs(e[5] - 22.4 * 1852 / 3600) < 1e-3 and e[6] == 84.4, e


# --- altitude from the receiver's own sentence mix
def test_altitude_from_gns_without_gga(mpy):
    # NMEA 0183 4.1 GNS: time, position, one mode letter per constellation (GPS, GLONASS, ...),
    # satellites, HDOP, altitude MSL, geoid separation. A receiver sending RMC+GNS has no GGA.
    got = _epochs(mpy, [rmc("120000.00", talker="GN"),
                        "GNGNS,120000.00,4807.038,N,01131.000,E,AAN,12,0.9,545.4,46.9,,,S"])
    _at(got[0], "2024-12-31T12:00:00.000Z")
    assert got[0][4] == 545.4


def test_altitude_from_garmin_pgrmz(mpy):
    # Garmin 190-00684-00 rev C: $PGRMZ,alt,f,dim gives the altitude in feet and the fix
    # dimension; gpsd takes it as MSL. A Garmin with GGA off still has its altitude there.
    got = _epochs(mpy, [rmc("120000.00"), "PGRMZ,1789,f,3"])
    _at(got[0], "2024-12-31T12:00:00.000Z")
    assert got[0][4] == 545.287  # 1789 ft x 0.3048 m, to the mm


# --- mode and status fields across NMEA revisions
def test_rmc_status_d_is_a_fix(mpy):
    # RMC's status field is A/V in NMEA 0183; receivers that put their mode there send D for a
    # differential fix (gpsd's processRMC takes A and D as valid).
    got = _epochs(mpy, ["GPRMC,120000.00,D,4807.038,N,01131.000,E,022.4,084.4,311224,003.1,W,D"])
    _at(got[0], "2024-12-31T12:00:00.000Z", 2)


def test_fewer_than_four_satellites_is_no_3d_fix(mpy):
    # A 3D fix solves x, y, z and the receiver clock: four satellites. With three in GGA (and no
    # GSA to say otherwise) the altitude is a held one: 2D, as gpsd's processGGA decides too.
    got = _epochs(mpy, [gga("120000.00").replace(",1,08,", ",1,03,"), rmc("120000.00")])
    _at(got[0], "2024-12-31T12:00:00.000Z", 2)


# --- a receiver whose clock stops when it loses lock
def test_a_repeated_time_is_a_new_epoch_without_a_fix(mpy):
    # gpsd's processGGA names the Trimble Placer 450: on losing lock it sends no GSA mode 1 but
    # keeps sending GGA and GSA with the last fix's time and position. Each repeat is an epoch of
    # its own (gpsd reports each) and the position in it is an old one: no fix, never a fresh one.
    gsa = "GPGSA,A,3,01,02,03,04,,,,,,,,,1.5,0.9,1.2"
    got = _epochs(mpy, [rmc("120000.00"), gga("120000.00"), gsa,
                        gga("120001.00"), gsa, gga("120001.00"), gsa, gga("120001.00"), gsa])
    assert [e[0] for e in got] == [3, 3, 1, 1], got
    assert [e[1] for e in got] == ["2024-12-31T12:00:00.000Z"] + ["2024-12-31T12:00:01.000Z"] * 3
    assert all(e[2] is None for e in got[2:]), got


# --- fields padded with spaces
def test_numbers_padded_with_spaces(mpy):
    # NMEA 0183 fields are variable width, yet some receivers pad numbers to a fixed width with
    # spaces (`, 545.4,`); gpsd reads them with atof/strtol, which skip leading white space.
    got = _epochs(mpy, [rmc("120000.00", speed="  22.4", course="84.4 "),
                        gga("120000.00", alt="  545.4").replace(",08,", ", 8,")])
    _at(got[0], "2024-12-31T12:00:00.000Z")
    assert got[0][4] == 545.4 and abs(got[0][5] - 22.4 * 1852 / 3600) < 1e-3 and got[0][6] == 84.4


# --- speed, course and position from the RMC that follows a no-fix GGA
def test_a_fix_in_rmc_after_a_no_fix_gga_is_kept(mpy):
    # SiRF's cycle is GGA GSA GSV RMC: GGA can still say quality 0 when the RMC after it has the
    # fix. gpsd merges the sentences in order, so the RMC's position, speed and course are its
    # report; a no-fix GGA after a fix in RMC (u-blox order RMC VTG GGA) still ends as no fix.
    no_fix = "GPGGA,120000.00,,,,,0,00,99.99,,,,,,"
    got = _epochs(mpy, [no_fix, rmc("120000.00"), rmc("120001.00"), no_fix.replace("0000.", "0001.")])
    _at(got[0], "2024-12-31T12:00:00.000Z", 2)
    assert abs(got[0][5] - 22.4 * 1852 / 3600) < 1e-3 and got[0][6] == 84.4
    assert got[1][0] == 1 and got[1][2] is None, got


def test_unchecked_sentences_without_their_optional_tail(mpy):
    # Without a checksum a sentence is whole when it has its fields through the last one a
    # receiver always sends: RMC through the date (SiRF sends no magnetic variation), GGA through
    # the DGPS age (the station ID left off); gpsd's minima are 8 and 13.
    lines = [b"$GPRMC,120000.00,A,4807.038,N,01131.000,E,022.4,084.4,311224",
             b"$GPGGA,120000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,",
             b"$GPRMC,120001.00,A,4807.038,N,01131.000,E,022.4,084.4,3112"]  # cut in the date
    got = _epochs(mpy, lines)
    assert len(got) == 2, got
    _at(got[0], "2024-12-31T12:00:00.000Z")
    assert got[0][4] == 545.4
    _at(got[1], "2024-12-31T12:00:01.000Z", 2)  # the cut date refused, the day carried on


def test_a_dead_reckoned_vtg_gives_no_speed(mpy):
    # NMEA 0183 2.3: mode E (estimated, dead reckoning) is not a valid status; gpsd's processVTG
    # drops such a VTG. The RMC's speed in the same epoch still counts (u-blox sends A there).
    got = _epochs(mpy, [gga("120000.00"), "GPVTG,084.4,T,087.5,M,022.4,N,041.5,K,E",
                        rmc("120001.00", speed="010.0"), "GPVTG,084.4,T,087.5,M,022.4,N,041.5,K,E"])
    assert got[0][5] is None and got[0][6] is None, got
    assert abs(got[1][5] - 10.0 * 1852 / 3600) < 1e-3 and got[1][6] == 84.4, got
