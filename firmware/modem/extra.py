"""Less used modem functions, imported only by what needs them (saves heap on boards that do not):
network time, operator, PSM / eDRX configuration (27.007 §7.38, §7.40, timers 24.008 §10.5.7)."""
from modem import atlines
from modem.core import ModemError


def parse_cclk(line):
    """+CCLK: "yy/MM/dd,hh:mm:ss±zz" (27.007 §8.15, zone in quarter hours)
    -> (year, month, day, hour, minute, second, tz_minutes) or None."""
    s = line[atlines.after_colon(line):].strip().strip('"')
    try:
        d, t = s.split(",")
        yy, mo, dd = (int(x) for x in d.split("/"))
        tz = 0
        for sign in "+-":
            j = t.find(sign)
            if j > 0:
                tz = int(t[j + 1:]) * 15 * (-1 if sign == "-" else 1)
                t = t[:j]
        hh, mi, ss = (int(x) for x in t.split(":"))
    except (ValueError, IndexError):
        return None
    return 2000 + yy, mo, dd, hh, mi, ss, tz


async def network_time(m):
    """(year, month, day, hour, minute, second, tz_minutes) from +CCLK?, or None."""
    lines = await m.cmd("AT+CCLK?", "+CCLK:")
    return parse_cclk(lines[0]) if lines else None


async def operator(m):
    """+COPS? numeric MCC/MNC (27.007 §7.3) or None."""
    await m.cmd("AT+COPS=3,2")
    lines = await m.cmd("AT+COPS?", "+COPS:")
    f = atlines.fields(lines[0], atlines.after_colon(lines[0])) if lines else []
    return f[2] if len(f) > 2 and f[2] else None


async def set_psm(m, enable, tau_s=86400, active_s=10):
    """+CPSMS (27.007 §7.38) with a GPRS-timer-3 TAU and a timer-2 active time."""
    if not m.has("psm"):
        raise ModemError("psm not supported")
    if not enable:
        await m.cmd("AT+CPSMS=0")
        return
    await m.cmd('AT+CPSMS=1,,,"%s","%s"' % (timer3(tau_s), timer2(active_s)))


async def set_edrx(m, enable, act=4, cycle="0101"):
    """+CEDRXS (27.007 §7.40): act 4 = E-UTRAN (WB-S1 / LTE-M), 5 = NB-S1; cycle 4 bits."""
    if not m.has("psm"):
        raise ModemError("edrx not supported")
    await m.cmd('AT+CEDRXS=%d,%d,"%s"' % (1 if enable else 0, act, cycle))


def _bits(v, n):
    s = bin(v)[2:]
    return "0" * (n - len(s)) + s


def timer3(seconds):
    """GPRS Timer 3 octet as 8 bits (24.008 §10.5.7.4a): unit in bits 8-6, value in 5-1."""
    for unit, step in ((3, 2), (4, 30), (5, 60), (0, 600), (1, 3600), (2, 36000), (6, 1152000)):
        v = (seconds + step - 1) // step
        if v < 32:
            return _bits(unit, 3) + _bits(v, 5)
    return "11011111"  # 31 x 320 h


def timer2(seconds):
    """GPRS Timer 2 octet as 8 bits (24.008 §10.5.7.4): 2 s, 1 min or 6 min units."""
    for unit, step in ((0, 2), (1, 60), (2, 360)):
        v = (seconds + step - 1) // step
        if v < 32:
            return _bits(unit, 3) + _bits(v, 5)
    return "01011111"
