"""Benchmarks: ``python -m benchmarks [--quick] [--json PATH] [--only NAME ...]``.

Each ``benchmarks/bench_*.py`` module exposes ``run(quick: bool) -> list[dict]``: one dict per
measured case (flat keys; numbers are figures, ``bench`` names the module's topic).  Data are
generated with fixed seeds; nothing is committed.
"""
