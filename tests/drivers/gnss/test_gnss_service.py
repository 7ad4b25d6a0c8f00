"""The GNSS service on MicroPython: fed from a UART stream (asyncio) or from modem queries, it keeps
the last fix and its age, switches the receiver, and carries the date across midnight."""

from __future__ import annotations

_UART = r"""
import asyncio, json, time
from gnss.service import Gnss

class Reader:  # stands in for asyncio.StreamReader(machine.UART(...))
    def __init__(self, lines):
        self.lines = lines
    async def readline(self):
        if self.lines:
            await asyncio.sleep_ms(20)
            return self.lines.pop(0)
        await asyncio.sleep_ms(10000)  # the receiver went quiet
        return b""

switched = []
g = Gnss(power=switched.append)
g.epoch.not_before = 19891209  # a 2009 capture (BT-451, gpsd log): its dates are true for then
g.power(True)
epoch = [b"$GPRMC,152505.00,A,5547.82113,N,02334.14130,E,0.253,,091209,,,A*7A\r\n",
         b"$GPGGA,152505.00,5547.82113,N,02334.14130,E,1,04,2.72,37.0,M,26.9,M,,*6B\r\n",
         b"$GPGSA,A,3,26,32,11,14,,,,,,,,,6.25,2.72,5.62*05\r\n"]

async def main():
    t = asyncio.create_task(g.run_uart(Reader(epoch)))
    await asyncio.sleep_ms(200)
    before = g.fix  # the epoch is not over until the receiver pauses
    await g.updated.wait()
    f = g.fix
    await asyncio.sleep_ms(500)
    age = g.age_ms()
    t.cancel()
    g.power(False)
    print(json.dumps({"before": before is None, "mode": f.mode, "time": f.iso_time(),
        "lat": f.lat, "alt": f.alt_msl, "sats": f.sats_used, "acc": f.accuracy_m, "age": age,
        "switched": switched}))

asyncio.run(main())
"""

_MODEM = r"""
import asyncio, json
from gnss import at
from gnss.service import Gnss

answers = ["+CGNSINF: 1,0,20240101120000.000,,,,,,,,,,,,,,,,,,",
           "+CGNSINF: 1,1,20220112234948.000,47.211150,-1.566408,31.500,0.00,224.1,1,,1.9,2.1,1.0,,13,4,,,,42,,"]
queries = []
now = [0]
g = Gnss(ticks_ms=lambda: now[0])
g.poll_ms = 5

async def query():
    queries.append(1)
    if len(queries) == 3:
        g.power(False)  # the alarm needs the radio: GNSS off, the loop ends
    now[0] += 1000
    return answers[min(len(queries), 2) - 1]

async def main():
    g.power(True)
    await g.run_modem(query, at.cgnsinf)
    now[0] += 2500
    print(json.dumps({"queries": len(queries), "mode": g.fix.mode, "lat": g.fix.lat,
        "last_mode": g.last.mode, "age": g.age_ms()}))

asyncio.run(main())
"""

_MIDNIGHT = r"""
import json
from gnss.epoch import Epoch, next_day
from gnss.nmea import Nmea

def cs(body):
    x = 0
    for c in body:
        x ^= ord(c)
    return ("$%s*%02X" % (body, x)).encode()

p = Nmea()
e = Epoch()
out = []
for s in ["GPRMC,235959.00,A,4807.038,N,01131.000,E,0.0,,311224,,,A",
          "GPGGA,235959.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
          "GPGGA,000000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
          "GPGGA,000001.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"]:
    if p.feed(cs(s)):
        f = e.add(p)
        if f:
            out.append(f.iso_time())
out.append(e.flush().iso_time())
print(json.dumps([out, next_day(20240228), next_day(20230228), next_day(21000228),
                  next_day(20241130)]))
"""


def test_uart_stream_gives_fix_after_the_burst(mpy):
    got = mpy.json(_UART)
    assert got["before"] is True
    assert got["mode"] == 3 and got["time"] == "2009-12-09T15:25:05.000Z"
    assert abs(got["lat"] - 55.797018833) < 1e-7 and got["alt"] == 37.0 and got["sats"] == 4
    assert abs(got["acc"] - 2.72 * 5.0) < 1e-9  # HDOP x 5 m UERE
    assert 400 <= got["age"] <= 1000  # ms since the epoch ended (real clock of the VM)
    assert got["switched"] == [True, False]


def test_modem_queries_feed_the_same_fix(mpy):
    got = mpy.json(_MODEM)
    assert got["queries"] == 3
    assert got["mode"] == 3 and abs(got["lat"] - 47.21115) < 1e-9
    assert got["last_mode"] == 3
    assert got["age"] == 2500  # the 3rd answer (t=3000 ms) is the last fix; read at t=5500 ms


def test_date_carries_across_midnight(mpy):
    times, leap, common, century, month = mpy.json(_MIDNIGHT)
    assert times == ["2024-12-31T23:59:59.000Z", "2025-01-01T00:00:00.000Z",
                     "2025-01-01T00:00:01.000Z"]
    assert (leap, common, century, month) == (20240229, 20230301, 21000301, 20241201)


_NO_FIX_TALKERS = r"""
import json
from gnss.service import Gnss
g = Gnss(ticks_ms=lambda: 0)
n = [0]
def count(f):
    n[0] += 1
g.on_fix = count
second = [b"$GPGGA,,,,,,0,00,99.99,,,,,,*48", b"$GAGGA,,,,,,0,00,99.99,,,,,,*59",
          b"$GPRMC,,V,,,,,,,,,,N*53", b"$GARMC,,V,,,,,,,,,,N*42"]
for _ in range(5):
    for line in second:
        g.feed_line(line)
g.end_epoch()
print(json.dumps([n[0], g.last.mode, g.last.time_ms, g.nmea.parsed]))
"""


def test_no_fix_multi_talker_receiver_gives_one_epoch_a_second(mpy):
    epochs, mode, time_ms, parsed = mpy.json(_NO_FIX_TALKERS)
    assert parsed == 20 and epochs == 5 and mode == 1 and time_ms is None


_GST = r"""
import json
from gnss.service import Gnss
g = Gnss(ticks_ms=lambda: 0)
for line in (b"$GPRMC,150121.000,A,5104.0859,N,11405.7388,W,0.06,194.17,090322,,,D*78",
             b"$GPGST,150121.000,004.0,008.5,004.7,132.0,006.6,007.0,00013*70"):
    g.feed_line(line)
g.end_epoch()
print(json.dumps([g.fix.mode, g.fix.accuracy_m, g.fix.hdop]))
"""


def test_accuracy_comes_from_gst_when_the_receiver_sends_it(mpy):
    mode, acc, hdop = mpy.json(_GST)  # Quectel L70 sentences from the gpsd log
    assert mode == 2 and hdop is None
    assert acc == 9.62  # sqrt(6.6² + 7.0²) m, horizontal 1-sigma
