"""helpers.bench: the stored results of make bench, read with `stored` and written with `store`."""

import json
import os

from helpers import bench
from helpers.chapter import claims

import numpy as np
import pytest

from tool_modules import ROOT


def test_stored_names_what_it_knows():
    with pytest.raises(ValueError, match="latency, networks, wall_time"):
        bench.stored("speed")
    results, table = bench.stored("latency")
    assert "models" in results and table.strip()


def test_stored_networks_have_a_ratio_per_batch():
    results, table = bench.stored("networks")
    for entry in results["networks"].values():
        for b in entry["batches"].values():
            assert b["ratios"]["original/fused"]["q25"] <= b["ratios"]["original/fused"]["median"]
    assert "| network |" in table


def test_stored_wall_time_has_a_ratio_per_seed():
    try:
        results, table = bench.stored("wall_time")
    except FileNotFoundError as err:  # a clear sentence, not a traceback from importlib
        assert "make bench" in str(err)
        return
    for entry in results["seeds"].values():
        assert entry["time_ratio"]["q25"] <= entry["time_ratio"]["median"]
        assert entry["no_bn"]["steps"] > 0 and entry["bn"]["steps"] > 0
    assert "| seed |" in table


def test_store_writes_the_json_and_the_table(tmp_path):
    results = {"models": {"m": {"median_us": np.float32(1.5)}}, "meta": {"µs": 1}}
    paths = bench.store("latency", results, "| a |\n", tmp_path / "out")
    assert [os.path.basename(p) for p in paths] == ["latency.json", "latency.md"]
    text = (tmp_path / "out" / "latency.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text) == {
        "models": {"m": {"median_us": 1.5}},
        "meta": {"µs": 1},
    }
    assert (tmp_path / "out" / "latency.md").read_text(encoding="utf-8") == "| a |\n"
    with pytest.raises(ValueError, match="name must be one of"):
        bench.store("speed", results, "", tmp_path)


def test_meta_says_what_ran_and_how_long(monkeypatch):
    monkeypatch.setattr(bench.time, "time", lambda: 110.04)
    record = bench.meta(100.0, 0.5, reps=3)
    assert record["reps"] == 3 and record["seconds"] == 10.0
    assert record["load_average_1min_start"] == 0.5 and "load_average_1min" in record
    for key in ("tensorflow", "keras", "python", "cpu_count", "machine"):
        assert record[key], key
    assert "load_average_1min_start" not in bench.meta(100.0)


def test_batch_entries_are_one_empty_record_per_batch_size():
    entries = bench.batch_entries([1, 256], reps=5)
    assert list(entries) == ["1", "256"]
    assert entries["1"] == {"inner_calls": {}, "reps": 5, "variants": {}, "ratios": {}}
    assert entries["1"] is not entries["256"]


def test_the_stored_wall_time_timed_the_stored_chapters_runs():
    """C6 reads the benchmark's time ratios: they must be about chapter 07's own runs (its
    seeds, learning rates and steps to target), which the chapter compares and records."""
    with open(os.path.join(ROOT, "chapters", "07_evidence.ipynb"), encoding="utf-8") as f:
        reports = {record["id"]: checks for record, checks, _ in claims.records(json.load(f))}
    (match,) = [c for c in reports["C6"] if c.name == "bench_steps_match"]
    assert match.values is True, "make bench, then make chapter CHAPTER=07"


def test_ratio_medians_and_ranges_cover_every_model_and_batch():
    results, _ = bench.stored("latency")
    medians = bench.ratio_medians(results, "fused/no_bn")
    n_batches = sum(len(m["batches"]) for m in results["models"].values())
    assert len(medians) == n_batches
    ranges = bench.ratio_ranges(results, "fused/no_bn")
    for batch, (lo, hi) in ranges.items():
        values = [v for (_, b), v in medians.items() if b == batch]
        assert (lo, hi) == (min(values), max(values))
    networks, _ = bench.stored("networks")
    assert {n for n, _ in bench.ratio_medians(networks)} == set(networks["networks"])
    with pytest.raises(ValueError, match="ratio"):
        bench.ratio_medians(results, "slow/fast")
    with pytest.raises(ValueError, match="results"):
        bench.ratio_medians({"seeds": {}})


def test_slowest_is_the_batch_where_fusing_gains_least():
    results, _ = bench.stored("latency")
    medians, noise = bench.slowest_ratios(results)
    for name, entry in results["models"].items():
        slowest = bench.slowest(entry)
        assert slowest["median"] == min(bench.ratio_medians({"models": {name: entry}}).values())
        assert medians[name] == slowest["median"]
        assert noise[name] == (slowest["q75"] - slowest["q25"]) / 2
    with pytest.raises(ValueError, match="entry"):
        bench.slowest({})


def test_seed_medians_and_noise_of_the_wall_time():
    results, _ = bench.stored("wall_time")
    medians = bench.seed_medians(results, "time_ratio")
    assert set(medians) == {int(s) for s in results["seeds"]}
    iqr = [v["time_ratio"]["q75"] - v["time_ratio"]["q25"] for v in results["seeds"].values()]
    assert bench.seed_noise(results, "time_ratio") == max(iqr) / 2
    with pytest.raises(ValueError, match="key"):
        bench.seed_medians(results, "speed")
    with pytest.raises(ValueError, match="wall_time"):
        bench.seed_noise({"models": {}}, "time_ratio")
