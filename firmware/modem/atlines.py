"""AT response lines, pure (no machine): classify one whole line (V.250 §5.7, 27.007 §9.2, 27.005 §3.2.5).
A line is what the modem sent between terminators, CR/LF removed."""
from micropython import const

FINAL_OK = const(1)
FINAL_ERROR = const(2)
INTERMEDIATE = const(3)  # information text of the command in flight
PROMPT = const(4)  # "> ": send the data (AT+CMGS, AT+CASEND, AT+CIPSEND)
URC = const(5)
ECHO = const(6)
EMPTY = const(7)
UNKNOWN = const(8)  # none of the above: logged and counted by the engine

# V.250 result codes that end a command with failure; "SEND OK"/"SEND FAIL" end a socket send
# on Quectel (+QISEND) and older SIMCom (+CIPSEND) modules.
_ERRORS = ("ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT",
           "SEND FAIL")
# Call progress results (V.250 §6.3.1.9, 27.007 §6.2): they end a dial (ATD) or answer (ATA)
# in flight; at any other time a call ending says so with them, unprompted, and they are URCs.
CALL_ENDS = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
# Finals carrying a value. "+CME ERROR:" with nothing after it is not a result code.
_ERROR_PREFIXES = ("+CME ERROR: ", "+CMS ERROR: ")

# Unsolicited result codes from 27.007/27.005 and the module vendors. Dialects extend this tuple.
URC_PREFIXES = (
    "+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:",  # registration (27.007 §7.2, §10.1.20, §10.1.22)
    "+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CBM:",  # new message (27.005 §3.4.1)
    "+CPIN:", "+CFUN:", "+CTZV:", "+CTZE:", "+CGEV:", "+CUSD:", "+CIEV:", "+CRING:", "RING",
    "RDY", "SMS Ready", "*ATREADY", "APP RDY", "SMS DONE", "PB DONE", "+CPSMSTATUS:",
    "NORMAL POWER DOWN", "POWERED DOWN",
)
# Lines that announce a module (re)boot: unprompted means the modem reset itself. The first line
# of a boot (SIMCom/Quectel "RDY", SIMCom Cat-1 "*ATREADY: 1") always starts one; the later ones
# (SIMCom "SMS Ready", A76xx "SMS DONE"/"PB DONE", Quectel "APP RDY", the SIM's "+CPIN: READY")
# belong to the boot before them, and alone they are a reset whose first line was not sent (a
# module on autobaud prints no "RDY": SIMCom AT manuals, AT+IPR).
BOOT_URCS = ("RDY", "*ATREADY")
LATE_BOOT_URCS = ("SMS Ready", "SMS DONE", "PB DONE", "APP RDY", "+CPIN: READY")
BOOT_FIRST = const(1)
BOOT_LATE = const(2)
# URCs followed by one more line that belongs to them (the PDU, 27.005 §3.4.1 PDU mode).
TWO_LINE_URCS = ("+CMT:", "+CDS:", "+CBM:")


def final_kind(line):
    """FINAL_OK, FINAL_ERROR or 0 (not a final result code)."""
    if line == "OK" or line == "SEND OK":
        return FINAL_OK
    if line in _ERRORS:
        return FINAL_ERROR
    for p in _ERROR_PREFIXES:
        if line.startswith(p):
            return FINAL_ERROR
    if line.startswith("MODEM ERROR: "):
        v = line[13:]
        if v and v.isdigit():
            return FINAL_ERROR
    return 0


def error_code(line):
    """(kind, code) of an error final: ('CME', 10), ('CMS', 300), ('ERROR', None)...
    code stays a str when the modem gives verbose text (AT+CMEE=2)."""
    for p in _ERROR_PREFIXES:
        if line.startswith(p):
            v = line[len(p):].strip()
            return p[1:4], int(v) if v.isdigit() else v
    return line, None


def call_end_urc(line, cmd):
    """A call-progress result that is not the answer of `cmd` (the command in flight, or None):
    the end of a call, not of an unrelated command."""
    if line not in CALL_ENDS:
        return False
    return cmd is None or not (cmd.startswith("ATD") or cmd == "ATA")


def is_boot(line):
    """BOOT_FIRST, BOOT_LATE or 0 (not a boot line)."""
    for b in BOOT_URCS:
        if line.startswith(b):
            return BOOT_FIRST
    for b in LATE_BOOT_URCS:
        if line.startswith(b):
            return BOOT_LATE
    return 0


def is_urc(line, prefixes=URC_PREFIXES):
    for p in prefixes:
        if line.startswith(p):
            return True
    return False


def classify(line, expect=None, echo=None, in_command=False, prefixes=URC_PREFIXES):
    """Kind of one whole line.
    expect: the response prefix of the command in flight ("+CSQ:"), "" when it answers bare text
    (AT+CGSN), None when it answers nothing but a final result. echo: the command text sent."""
    if not line:
        return EMPTY
    if echo is not None and line == echo:
        return ECHO
    if in_command:
        f = final_kind(line)
        if f:
            return f
        if line == ">" or line.startswith("> "):
            return PROMPT
        if expect and line.startswith(expect):
            return INTERMEDIATE
    if is_urc(line, prefixes):
        return URC
    if in_command and expect == "":
        return INTERMEDIATE
    return UNKNOWN


def fields(line, prefix_len):
    """Comma-separated values after a "+XXX: " prefix, quotes removed, spaces trimmed.
    Quoted commas are kept inside their field."""
    parts = line[prefix_len:].split(",")
    out = []
    i = 0
    n = len(parts)
    while i < n:
        f = parts[i]
        while f.count('"') & 1 and i + 1 < n:  # an opened quote spans the next comma
            i += 1
            f = f + "," + parts[i]
        out.append(f.strip().strip('"').strip())
        i += 1
    return out


def after_colon(line):
    """Index just past "+XXX:" (and the space after it, if any)."""
    i = line.find(":")
    if i < 0:
        return 0
    i += 1
    while i < len(line) and line[i] == " ":
        i += 1
    return i
