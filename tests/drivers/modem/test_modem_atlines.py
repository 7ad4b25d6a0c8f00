"""AT line classification, the engine's framing and URC dispatch, and the 27.007 parsers, on the
MicroPython VM, fed with real transcripts (gammu dumps and URC vectors, ModemManager vectors)."""

import json
import tempfile
from pathlib import Path

import pytest
from modem_vectors import GAMMU, gammu_urcs, mm_at

HERE = Path(__file__).parent
MM = mm_at()


def split_lines(text: str) -> list[str]:
    """Whole lines as the engine's framer cuts them: CR or LF ends a line, empty lines dropped,
    everything else (trailing spaces included) kept."""
    return [x for x in text.replace("\r", "\n").split("\n") if x]


def run(vm, code, data):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
    src = f"DATA = {f.name!r}\n" + code
    return [json.loads(x) for x in vm.run(src).splitlines() if x.startswith(("{", "[", '"'))]


def test_final_result_codes_match_modemmanager(mpy_modem):
    cases = MM["at_serial_parse_ok"] + MM["at_serial_parse_error"]
    got = run(mpy_modem, r"""
import json
from modem import atlines
for lines in json.load(open(DATA)):
    kinds = [atlines.classify(l, "+X:", None, True) for l in lines]
    finals = [k for k in kinds if k in (atlines.FINAL_OK, atlines.FINAL_ERROR)]
    print(json.dumps([bool(finals), bool(finals) and finals[0] == atlines.FINAL_ERROR]))
""", [split_lines(c["input"]) for c in cases])
    assert got == [[c["final_result_found"], c["is_error"]] for c in cases]


def _transcripts():
    out = []
    for folder in ("at-sms", "at-creg", "at-creg-corner", "at-cpms", "at-cnmi", "at-ussd"):
        for p in sorted((GAMMU / folder).glob("*.dump")):
            if not p.exists():
                continue
            raw = p.read_bytes()
            first = raw.replace(b"\r", b"\n").split(b"\n")[0].decode(errors="replace")
            if not first.startswith("AT"):
                continue
            cmd = first.strip()
            name = cmd[2:].split("=")[0].split("?")[0]
            out.append({"name": f"{folder}/{p.name}", "cmd": cmd, "expect": name + ":",
                        "reply": raw[len(first):].decode("latin-1")})
    return out


TRANSCRIPTS = _transcripts()

_ENGINE = r"""
import json, asyncio
from modem.at import At, AtError
from mpy_at_harness import FakeUart
async def one(t):
    u = FakeUart({t["cmd"]: t["reply"].encode()})
    at = At(u, u, log=lambda *a: None)
    at.start()
    try:
        lines = await at.cmd(t["cmd"], t["expect"], 1000)
        res = "ok"
    except AtError as e:
        lines, res = [], "error"
    except Exception as e:
        lines, res = [], repr(e)
    await asyncio.sleep_ms(5)
    at.stop()
    print(json.dumps({"res": res, "lines": lines, "unknown": at.unknown, "urc": at.stats["urc"]}))
async def main():
    for t in json.load(open(DATA)):
        await one(t)
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def engine_results(mpy_modem):
    return run(mpy_modem, _ENGINE, TRANSCRIPTS)


@pytest.mark.parametrize("i", range(len(TRANSCRIPTS)), ids=lambda i: TRANSCRIPTS[i]["name"])
def test_real_transcript_through_engine(engine_results, i):
    """Echo recognised, every reply line is the command's or a URC, none unknown, one final."""
    t, r = TRANSCRIPTS[i], engine_results[i]
    assert r["res"] == "ok", r
    assert r["unknown"] == [], r
    if t["name"].startswith("at-sms/"):
        assert len(r["lines"]) == 2 and r["lines"][0].startswith("+CMGR:")
    if t["name"].startswith("at-ussd/"):
        assert r["urc"] + len(r["lines"]) >= 1
    elif "+" + t["expect"][1:] in t["reply"] or t["expect"] in t["reply"]:
        assert r["lines"] and r["lines"][0].startswith(t["expect"])


def test_registration_lines_match_modemmanager(mpy_modem):
    regs = MM["registration"]
    got = run(mpy_modem, r"""
import json
from modem import atlines, core
for line, solicited in json.load(open(DATA)):
    print(json.dumps(core.parse_reg(line, solicited)))
""", [[split_lines(v["input"])[0], v["solicited"]] for v in regs])
    act_names = {None: "UNKNOWN", 0: "GSM", 2: "UMTS", 3: "EDGE", 7: "LTE", 11: "5GNR"}
    for v, g in zip(regs, got, strict=True):
        e = v["expected"]
        stat, lac, ci, act = g
        assert (stat, lac or 0, ci or 0, act_names.get(act)) == (
            e["3gpp_stat"], e["lac_or_tac"], e["cell_id"], e["access_tech"]), v["input"]


def test_signal_clock_sim_parsers_match_modemmanager(mpy_modem):
    got = run(mpy_modem, r"""
import json
from modem import core, extra
d = json.load(open(DATA))
print(json.dumps([core.parse_cesq(x["input"]) for x in d["cesq"]]))
print(json.dumps([extra.parse_cclk(x["input"]) for x in d["cclk"]]))
print(json.dumps([core.parse_cpin(x["input"]) for x in d["cpin"]]))
print(json.dumps([core.parse_csq("+CSQ: 20,99"), core.parse_csq("+CSQ: 99,99")]))
""", {k: MM[k] for k in ("cesq", "cclk", "cpin")})
    cesq, cclk, cpin, csq = got
    for v, g in zip(MM["cesq"], cesq, strict=True):
        for k in ("rssi", "rscp", "ecio", "rsrq", "rsrp"):
            assert g.get(k) == v["expected"].get(k), (v["input"], k)
    for v, g in zip(MM["cclk"], cclk, strict=True):
        assert (g is not None) == v["expected"]["ok"], v["input"]
        if g:
            assert g[6] == v["expected"]["tz_offset_minutes"]
            y, mo, d, h, mi, sec = g[:6]
            assert f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}" == v["expected"]["iso8601"][:19]
    for v, g in zip(MM["cpin"], cpin, strict=True):
        want = None if v["expected_lock"] == "UNKNOWN" else v["expected_lock"].replace("_", " ").replace("PH NET", "PH-NET")
        assert g == want, v["input"]
    assert csq == [-73, None]


_URCS = r"""
import json, asyncio
from modem.core import Modem
from mpy_at_harness import FakeUart
async def main():
    for v in json.load(open(DATA)):
        script = {"AT+CMGD=1": b"\r\nOK\r\n", "AT+CMGD=0": b"\r\nOK\r\n"}
        ex = v.get("follow_up_exchange") or []
        cmgr = [x for x in ex if x.startswith("AT+CMGR") or x.startswith("+CMGR")]
        if cmgr:
            i = ex.index(cmgr[0])
            head = cmgr[0].split(" -> ")[-1]
            script["AT+CMGR=%s" % v["urc"].split(",")[-1].strip()] = (
                "\r\n" + head + "\r\n" + "\r\n".join(ex[i + 1:]) + "\r\n").encode()
        u = FakeUart(script)
        m = Modem(u, u, log=lambda *a: None)
        m.at.echo = False
        m.at.start()
        u.push(v["urc"].encode())
        await asyncio.sleep_ms(50)
        msgs = [{"number": s.number, "body": s.body if isinstance(s.body, str) else None,
                 "concat": s.concat} for s in m.inbox]
        sent = [w.decode().strip() for w in u.written]
        print(json.dumps({"id": v["id"], "inbox": msgs, "sent": sent, "unknown": m.at.unknown,
                          "sms_errors": m.sms_errors}))
        m.at.stop()
asyncio.run(main())
"""


def test_gammu_urcs_dispatched(mpy_modem):
    vecs = [v for v in gammu_urcs() if "urc" in v]
    got = {g["id"]: g for g in run(mpy_modem, _URCS, vecs)}
    # +CMTI -> AT+CMGR=<index> -> decoded into the inbox -> AT+CMGD=<index>
    assert got["cmti_sm_1"]["sent"] == ["AT+CMGR=1", "AT+CMGD=1"]
    assert got["cmti_sm_1"]["inbox"][0]["number"] == "+48694405877"
    assert got["cmti_sm_1"]["inbox"][0]["body"] == "Test"
    # +CMT direct, terminated by CR only: decoded without any command
    assert got["cmt_direct_deliver"]["sent"] == []
    assert got["cmt_direct_deliver"]["inbox"][0]["body"] == "Test"
    # concatenated UCS-2 parts carry (ref, total, seq)
    assert got["cmt_concat_part1"]["inbox"][0]["concat"] == [0x2A, 2, 1]
    assert got["cmt_concat_part2"]["inbox"][0]["concat"] == [0x2A, 2, 2]
    # a status report is not an incoming message; a garbage +CDS payload is counted, not fatal
    assert got["cds_direct"]["inbox"] == []
    assert got["cds_bad_payload"]["inbox"] == []
    for g in got.values():
        assert g["unknown"] == [], g


def test_engine_faults(mpy_modem):
    """Unknown and garbage lines are counted, a silent modem times out, two timeouts power-cycle
    it through PWRKEY, an unprompted RDY fails the command in flight and asks for re-init, the
    SMS prompt is answered with the PDU + Ctrl-Z."""
    (r,) = run(mpy_modem, r"""
import json, asyncio
from modem.at import At, AtError, AtTimeout, ModemReset
from modem.core import Modem
from mpy_at_harness import FakeUart
async def main():
    r = {}
    u = FakeUart({"AT+CSQ": b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"})
    resets, pins = [], []
    m = Modem(u, u, pwrkey=pins.append, log=lambda *a: None)
    at = m.at
    at.pwrkey_off_ms = at.pwrkey_on_ms = at.off_to_on_ms = 10
    at.on_reset = resets.append
    at.echo = False
    at.start()
    u.push(b"\r\nHELLO?\r\n\xff\xfe\x00garbage\r\n")
    r["csq"] = await at.cmd("AT+CSQ", "+CSQ:")
    r["unknown"] = at.unknown[:]
    u.silent = True
    for i in range(2):
        try:
            await m.cmd("AT+CSQ", "+CSQ:", 50)
        except AtTimeout:
            r.setdefault("timeouts", 0)
            r["timeouts"] += 1
    r["pins"] = pins
    r["resets_after_hang"] = resets[:]
    u.silent = False
    at.boot_burst_ms = 10
    u.push(b"\r\nRDY\r\n")  # the boot we caused: expected, not a reset
    await asyncio.sleep_ms(30)
    async def rdy_later():
        await asyncio.sleep_ms(20)
        u.push(b"\r\nRDY\r\n")
    asyncio.create_task(rdy_later())
    u.script["AT+CGNSINF"] = None
    try:
        await at.cmd("AT+CGNSINF", "+CGNSINF:", 5000)
    except ModemReset:
        r["reset_raised"] = True
    r["resets"] = resets
    u.script["AT+CMGS=15"] = b"\r\n> "
    u.script["0001000B915155661632F4000402CAFE\x1a"] = b"\r\n+CMGS: 7\r\n\r\nOK\r\n"
    r["mr"] = await m.send_sms("+15556661234", b"\xca\xfe")
    u.script["AT+CMGS=15"] = b"\r\n+CMS ERROR: 331\r\n"  # no network: refused before "> "
    try:
        await m.send_sms("+15556661234", b"\xca\xfe")
    except AtError as e:
        r["cms"] = [e.kind, e.code, len(u.written)]
    print(json.dumps(r))
asyncio.run(main())
""", None)
    assert r["csq"] == ["+CSQ: 20,99"]
    assert r["unknown"] == ["HELLO?", "???garbage"]
    assert r["timeouts"] == 2
    assert r["pins"] == [1, 0, 1, 0]  # off pulse, then on pulse (no boot URC in between)
    assert r["resets_after_hang"] == ["hang"]
    assert r["reset_raised"] and r["resets"] == ["hang", "reboot"]
    assert r["mr"] == 7
    assert r["cms"][:2] == ["CMS", 331]


def test_psm_timers_and_command(mpy_modem):
    """24.008 §10.5.7.4a/§10.5.7.4 timer octets and the +CPSMS line a dialect with PSM sends."""
    (r,) = run(mpy_modem, r"""
import json, asyncio
from modem import extra
from modem.sim7080 import Sim7080
from mpy_at_harness import FakeUart
async def main():
    u = FakeUart({'AT+CPSMS=1,,,"00000110","00000101"': b"\r\nOK\r\n"})
    m = Sim7080(u, u, log=lambda *a: None)
    m.at.echo = False
    m.at.start()
    await extra.set_psm(m, True, tau_s=3600, active_s=10)
    print(json.dumps([extra.timer3(3600), extra.timer3(60), extra.timer3(86400), extra.timer3(10 ** 8),
                      extra.timer2(10), extra.timer2(120), extra.timer2(1800), u.written[-1].decode()]))
asyncio.run(main())
""", None)
    # finest unit that holds the value: 1 h = 6 x 10 min, 60 s = 30 x 2 s, 1 day = 24 x 1 h
    assert r == ["00000110", "01111110", "00111000", "11011111", "00000101", "00100010", "00111110",
                 'AT+CPSMS=1,,,"00000110","00000101"\r']


def test_registration_corner_cases_do_not_crash(mpy_modem):
    """gammu's malformed +CREG answers (empty LAC, a lone quote, mismatched quotes) parse to
    something or nothing, never an exception."""
    lines = [x for p in sorted((GAMMU / "at-creg-corner").glob("*.dump"))
             for x in p.read_text().splitlines() if x.startswith("+CREG")]
    got = run(mpy_modem, r"""
import json
from modem import core
for line in json.load(open(DATA)):
    print(json.dumps(core.parse_reg(line, True)))
""", lines)
    assert len(got) == 3
    empty_lac = got[[i for i, x in enumerate(lines) if '""' in x][0]]
    assert empty_lac == [1, None, 0x605F, None]


def test_call_ends_end_only_a_dial_or_answer(mpy_modem):
    """NO CARRIER / BUSY arriving while an unrelated command is in flight (the centre hangs up
    during AT+CSQ) is the call's end, dispatched as a URC: the command gets its own answer. The
    same lines are the final result of ATD / ATA, and a URC with nothing in flight."""
    (r,) = run(mpy_modem, r"""
import json, asyncio
from modem.at import At, AtError
from mpy_at_harness import FakeUart
async def main():
    r = {"urcs": []}
    u = FakeUart({
        "AT+CSQ": b"\r\n+CSQ: 20,99\r\nNO CARRIER\r\n\r\nOK\r\n",
        "AT+CESQ": b"\r\nBUSY\r\n\r\n+CESQ: 99,99,255,255,20,45\r\n\r\nOK\r\n",
        "ATD+82231502112;": b"\r\nBUSY\r\n",
        "ATA": b"\r\nNO CARRIER\r\n",
    })
    at = At(u, u, log=lambda *a: None)
    at.echo = False
    for c in ("NO CARRIER", "BUSY", "NO ANSWER"):
        at.on(c, lambda line, extra: r["urcs"].append(line))
    at.start()
    r["csq"] = await at.cmd("AT+CSQ", "+CSQ:")
    r["cesq"] = await at.cmd("AT+CESQ", "+CESQ:")
    for cmd in ("ATD+82231502112;", "ATA"):
        try:
            await at.cmd(cmd, None, 1000)
            r[cmd] = "ok"
        except AtError as e:
            r[cmd] = e.kind
    u.push(b"\r\nNO ANSWER\r\n")
    await asyncio.sleep_ms(20)
    r["unknown"] = at.unknown[:]
    print(json.dumps(r))
asyncio.run(main())
""", None)
    assert r["csq"] == ["+CSQ: 20,99"] and r["cesq"] == ["+CESQ: 99,99,255,255,20,45"]
    assert r["ATD+82231502112;"] == "BUSY" and r["ATA"] == "NO CARRIER"
    assert r["urcs"] == ["NO CARRIER", "BUSY", "NO ANSWER"]
    assert r["unknown"] == []
