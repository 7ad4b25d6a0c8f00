"""Benchmarks (`make bench`): each module here has `main()` that measures and prints figures."""
