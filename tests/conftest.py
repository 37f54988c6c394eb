"""Test-session settings: set before torch starts its OpenMP threads."""
import os

# On a shared 2-core machine spinning OpenMP threads can slow a test tenfold; tests measure
# behaviour, not speed (benchmarks/ measure speed).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
