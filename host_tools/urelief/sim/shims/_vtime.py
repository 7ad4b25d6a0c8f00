# `time` for the virtual board: ticks and sleeps run on the board's clock (virtual or real),
# wall time comes from the RTC (2000-01-01 after a power-on, as on an ESP32 without a backup cell).
import _vchan
import _vframes
import utime
from utime import mktime, ticks_add, ticks_diff  # noqa: F401

_rtc_offset_us = 946684800 * 1000000  # epoch 1970: the RTC reads 2000-01-01 00:00 at t=0


def _now():
    return _vchan.chan.now_us()


def ticks_us():
    return ticks_add(utime.ticks_us(), _vchan.chan.skip_us)


def ticks_ms():
    # from one microsecond count, so ms and us ticks never disagree by a rounding
    return ticks_add(0, (utime.ticks_us() + _vchan.chan.skip_us) // 1000)


def ticks_cpu():
    return ticks_us()


def time_ns():
    return (_now() + _rtc_offset_us) * 1000


def time():
    return (_now() + _rtc_offset_us) // 1000000


def gmtime(secs=None):
    return utime.gmtime(time() if secs is None else secs)


def localtime(secs=None):
    return utime.localtime(time() if secs is None else secs)


def sleep_ms(ms):
    c = _vchan.chan
    end = c.now_us() + int(ms) * 1000
    while True:
        left = end - c.now_us()
        if left <= 0:
            return
        c.idle((left + 999) // 1000, _never)


def sleep_us(us):
    if us >= 1000:
        sleep_ms(us // 1000)


def sleep(s):
    sleep_ms(int(s * 1000))


def _never():
    return False


def set_rtc_offset(offset_us, tell_host=True):
    # machine.RTC().datetime(...) lands here; the host keeps it across resets, not power loss.
    global _rtc_offset_us
    _rtc_offset_us = offset_us
    if tell_host:
        import struct
        _vchan.chan.send(_vframes.RTC_SET, struct.pack('>q', offset_us))


def rtc_offset_us():
    return _rtc_offset_us
