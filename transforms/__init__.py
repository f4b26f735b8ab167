"""Per-block work and the Beam composites around the kernels.

- :mod:`ikou.transforms.decode`: bytes → blocks → kernel → part files → merged outputs
  (``blocks``: planning and decoding one block, no Beam runner needed; ``outputs``: merging parts,
  ``quarantine.avro``, the summary; ``sources``: the per-source steps of a job; ``beam``: the
  composites).
- :mod:`ikou.transforms.match`: record matching, ``engine`` in process and ``beam`` on Beam.
"""

#: Namespace of ikou's Beam Metrics counters.
METRICS_NAMESPACE = "ikou"
