"""The simulator's hand on the switch (sim/models/button.py) can never leave the pin closed:
whatever the seed, bounce and press length, the edges it plays run forward in time, alternate,
and end released. A stuck model is a fake SOS the firmware never caused."""

from hypothesis import given, settings
from hypothesis import strategies as st
from urelief.sim.models.button import Human

seeds = st.integers(0, 2**32 - 1)
bounces = st.floats(0.0, 10.0)
lengths = st.floats(0.05, 6000.0)


def _well_formed(edges, active):
    times = [t for t, _ in edges]
    assert times == sorted(times), edges
    assert all(a[1] != b[1] for a, b in zip(edges, edges[1:], strict=False)), edges  # every edge a change
    assert edges[-1][1] == 1 - active, edges  # the contact ends open


@settings(max_examples=400, deadline=None)
@given(seeds, bounces, lengths, st.sampled_from([0, 1]))
def test_a_bump_or_press_always_ends_released(seed, bounce, ms, active):
    h = Human(active=active, bounce_ms=bounce, seed=seed)
    _well_formed(h.bump_edges(0, ms), active)
    _well_formed(h.press_edges(100, ms), active)


@settings(max_examples=200, deadline=None)
@given(seeds, bounces, st.integers(1, 6), st.floats(1.0, 400.0), st.floats(1.0, 400.0))
def test_multi_presses_and_chatter_end_released(seed, bounce, n, press, gap):
    h = Human(active=0, bounce_ms=bounce, seed=seed)
    _well_formed(h.multi_press_edges(0, n, press, gap), 0)
    _well_formed(h.chatter_edges(0, bounce), 0)


def test_the_3ms_bumps_that_stuck_before():
    """2.4 % of 3 ms bumps ended closed when the make bounce (5 ms) outlasted the bump."""
    stuck = sum(Human(seed=s).bump_edges(0, 3)[-1][1] == 0 for s in range(2000))
    assert stuck == 0
