"""Apache Beam transforms around the kernels.

- :mod:`ikou.transforms.blocks`: planning blocks of whole records and decoding one block
  (plain functions, no Beam runner needed);
- :mod:`ikou.transforms.outputs`: merging part files, writing ``quarantine.avro``, the summary;
- :mod:`ikou.transforms.composites`: the composites ``PlanBlocks``, ``DecodeBlocks``,
  ``Finalize``.
"""
