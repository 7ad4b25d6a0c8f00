"""Runs first at every reset, before main.py. Kept minimal: the terminal must reach its
application (and the panic button) as fast as possible after a wake."""
