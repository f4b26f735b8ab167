"""Apache Beam transforms around the kernels."""
