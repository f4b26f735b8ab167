"""``ikou bench``: the cost model (fixed + per record), its stated error and the projection.

The measurements themselves are whole runs of ``ikou run`` (benchmarks, not tests); here the
model is checked on measurements built by hand, and the command on its argument checks.
"""

from __future__ import annotations

import pytest

from ikou.pipeline.cli import main
from ikou.pipeline.run.bench import STAGES, Measurement, _result, default_sizes, fit, format_bench


def _m(n: int, fixed: float, per: float, noise: float = 0.0) -> Measurement:
    records = 2 * n
    stages = {s: 0.0 for s in STAGES}
    stages["startup"] = fixed
    stages["pipeline"] = per * records + noise
    return Measurement(f"{n:,}", n, records, records * 270, fixed + per * records + noise,
                       stages, 500.0, True)


def test_fit_recovers_fixed_and_per_record_costs():
    a, b = fit([1000, 2000, 4000], [5 + 0.001 * x for x in (1000, 2000, 4000)])
    assert a == pytest.approx(5) and b == pytest.approx(0.001)
    assert fit([1000], [4.0]) == (0.0, 0.004)
    assert fit([1, 2, 3], [5, 4, 3]) == (4.0, 0.0)  # noise never gives a negative cost
    a, b = fit([10, 20], [1, 3])
    assert a == 0.0 and b > 0  # nor a negative fixed cost


def test_projection_and_errors():
    ms = [_m(n, 4.0, 2e-5) for n in (10_000, 40_000, 160_000)]
    r = _result(ms, 370_000, 2.0, 1)
    assert r.projection["total"] == pytest.approx(4.0 + 2e-5 * 740_000)
    assert r.projection["pipeline"] == pytest.approx(2e-5 * 740_000)
    assert all(abs(e["error_pct"]) < 1e-6 for e in r.errors)
    assert abs(r.holdout["error_pct"]) < 1e-6
    text = format_bench(r)
    assert "projection for 370,000 residents (740,000 records)" in text
    assert "largest predicted from the smaller sizes" in text
    noisy = _result([_m(10_000, 4, 2e-5, 1.0), _m(40_000, 4, 2e-5), _m(160_000, 4, 2e-5, 2.0)],
                    370_000, 2.0, 1)
    assert any(abs(e["error_pct"]) > 0.1 for e in noisy.errors)
    assert noisy.holdout["error_pct"] != 0


def test_default_sizes():
    assert default_sizes(1_000_000) == [62_500, 250_000, 1_000_000]
    assert default_sizes(2000) == [500, 1000, 2000]


def test_bench_arguments(capsys):
    assert main(["bench"]) == 2
    assert "give --residents N" in capsys.readouterr().err
    assert main(["bench", "x.yaml", "--residents", "10"]) == 2
    assert main(["bench", "--residents", "1000", "--sizes", "10,x"]) == 2
    assert main(["bench", "--residents", "1000", "--encoding", "utf-8"]) == 2


def test_bench_generates_its_town_in_a_mainframe_encoding(tmp_path):
    from ikou.pipeline.config.job import load_job
    from ikou.pipeline.run.bench import _generate

    job = load_job(_generate(tmp_path / "town", 300, "jef"))
    assert {s.layout.encoding for s in job.sources.values()} == {"jef"}
    with pytest.raises(ValueError):
        _generate(tmp_path / "other", 300, "utf-8")
