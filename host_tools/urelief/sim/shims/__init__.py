"""The virtual board's MicroPython side (put on MICROPYPATH, never imported by CPython), except
`_vframes`, the frame table both ends read."""
