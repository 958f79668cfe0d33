"""`bijli bench fleet` measures a real engine: every figure is there and has a sane size."""

from __future__ import annotations

from bijli.tools.bench import fleet as bench_fleet


def test_bench_fleet_reports_every_figure_from_a_real_engine(monkeypatch):
    monkeypatch.setenv("BIJLI_BENCH_FLEET_METERS", str(bench_fleet.CACHE + 4))  # a few dormant meters
    monkeypatch.setenv("BIJLI_BENCH_FLEET_LISTENERS", "30")
    monkeypatch.setenv("BIJLI_BENCH_FLEET_STORM", "6")
    monkeypatch.setenv("BIJLI_BENCH_FLEET_MONTH_METERS", "2")
    monkeypatch.setenv("BIJLI_BENCH_FLEET_MONTH_DAYS", "2")
    rows = {r.name: r for r in bench_fleet.bench()}
    record = next(r for name, r in rows.items() if name.startswith("fleet: dormant record"))
    assert 1000 < record.value < 32 * 1024 and record.unit == "bytes"  # compressed RAM of a real meter
    assert rows["fleet: first start of a meter (hydrate, born)"].value > 0
    assert rows["fleet: 30-min capture boundary, per meter (one group)"].value > 0
    assert rows["fleet: shard disk per meter after its first boundary"].value > 0
    paged = rows["fleet month: shard disk per meter-day, profile pages (2 meters x 2 days)"]
    assert 0 < paged.value < rows["fleet month: shard disk per meter-day, one row per entry (before)"].value
    assert rows["fleet month: profile entries per meter-day (block, daily, events)"].value > 48  # 30-min blocks
    assert "fleet: start-up of 30 listeners at own loopback addresses" in rows
    # the way before beside the way now, in the same run
    assert rows["fleet: start-up per listener, an asyncio server each (before, same run, 30)"].value > 0
    assert 0 < rows["fleet: manifest row per meter, no hydration (CPU)"].value
    assert rows["fleet: manifest row per meter, hydrating it (before, same run; CPU)"].value > 0
    assert 0 <= rows["fleet: idle CPU on a real clock, listeners open"].value < 100
    assert rows["fleet: associations per CPU-s, dormant meters one at a time (6 meters)"].value > 0
    delivered = rows["fleet: storm deliveries per CPU-s, head-end and meters on one core"].value
    assert delivered > 0
    # a read-back costs CPU too: both phases together are fewer meters per CPU-second
    assert 0 < rows["fleet: storm meters delivered and read back per CPU-s (both phases)"].value < delivered
    assert rows["fleet: storm meters not credited exactly once"].value == 0  # a real storm, verified


def test_bench_fleet_runs_the_parts_it_is_asked_for(monkeypatch):
    import pytest

    from bijli.tools.errors import UsageError

    monkeypatch.setenv("BIJLI_BENCH_FLEET_PARTS", "listen")
    monkeypatch.setenv("BIJLI_BENCH_FLEET_LISTENERS", "40")
    monkeypatch.setenv("BIJLI_BENCH_FLEET_LISTENERS_BEFORE", "10")
    rows = {r.name: r for r in bench_fleet.bench()}
    assert all(name.startswith("fleet: ") for name in rows) and len(rows) == 6
    assert "fleet: start-up of 40 listeners at own loopback addresses" in rows
    assert "fleet: start-up per listener, an asyncio server each (before, same run, 10)" in rows
    monkeypatch.setenv("BIJLI_BENCH_FLEET_PARTS", "listen,lunch")
    with pytest.raises(UsageError, match="lunch"):
        bench_fleet.bench()
