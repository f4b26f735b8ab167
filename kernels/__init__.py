"""Hot kernels (Cython) with pure-Python twins. No Beam, no Great Expectations here."""
