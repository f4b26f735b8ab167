"""Record matching (名寄せ): the in-process engine (``engine``) and its Beam composites (``beam``)."""
