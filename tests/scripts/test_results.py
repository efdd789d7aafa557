"""scripts/bench/make_results.py: BENCHMARKS.md and the README's Results section come from the benchmark JSON files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "make_results.py"

README_HEAD = "# Project\n\nIntro with a table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Results\n\n"
README_TAIL = "\n\n## Development\n\nTail text, kept as is.\n"


@pytest.fixture(scope="module")
def make_results() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_results", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_results"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A fake checkout: one benchmark in the documented format, one older file, a figure and a README."""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    _write_json(bench / "quality.json", {
        "benchmark": "quality", "title": "Quality on fakes", "command": "python scripts/bench_quality.py --count 3",
        "commit": "abc123", "date": "2026-01-02 03:04:05 UTC",
        "machine": {"cpu": "Test CPU 9000", "cpu_count": 2, "gpu": None, "torch_threads": 1},
        "settings": {"count": 3, "seed": 987654, "frames": [8, 16]},
        "tables": [
            {"title": "Main table", "columns": ["method", "PSNR (dB)", "SSIM"], "headline": True,
             "rows": [["TFP", 23.456, 0.65432], ["ours", 30.1, 0.9]], "note": "3 fakes."},
            {"title": "Sweep table", "columns": ["method", "8 frames"], "rows": [["TFP", 20.96]]},
        ],
    })
    _write_json(bench / "speed.json", {  # an older layout: no "tables", machine as "cpu"
        "commit": "def456", "cpu": "Old CPU", "cpu_count": 2,
        "settings": {"ticks": 2000},
        "throughput": {"ours_mb_per_s": 99.5, "speedup": 10.4, "stream": "250x400 .dat"},
        "rows": [{"gaussians": 1000, "seconds": 0.0299}, {"gaussians": 50000, "seconds": 3.65}],
    })
    (bench / "speed.md").write_text("# Speed\n\nReproduce: `python scripts/bench_speed.py --ticks 2000`\n")
    figures = tmp_path / "docs" / "figures"
    figures.mkdir(parents=True)
    (figures / "quality_crops.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (figures / "unrelated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    readme = README_HEAD + "<!-- results:start -->\nOLD NUMBER 12.34\n<!-- results:end -->" + README_TAIL
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    return tmp_path


def _run(make_results: ModuleType, repo: Path, *extra: str) -> int:
    return make_results.main(["--benchmarks", str(repo / "benchmarks"), "--readme", str(repo / "README.md"),
                              "--out", str(repo / "BENCHMARKS.md"), "--repo", str(repo),
                              "--readme-benchmarks", "quality", "speed", *extra])


def test_tables_and_readme_section(make_results: ModuleType, repo: Path) -> None:
    assert _run(make_results, repo) == 0
    bench_md = (repo / "BENCHMARKS.md").read_text(encoding="utf-8")
    # documented format: both tables, machine, commit, date, settings and command
    assert "| TFP | 23.46 | 0.6543 |" in bench_md and "| ours | 30.10 | 0.9000 |" in bench_md
    assert "### Sweep table" in bench_md and "| TFP | 20.96 |" in bench_md
    assert "Test CPU 9000 (2 cores, 1 torch thread), no GPU" in bench_md
    assert "`abc123`" in bench_md and "2026-01-02 03:04:05 UTC" in bench_md
    assert "`python scripts/bench_quality.py --count 3`" in bench_md and '"seed": 987654' in bench_md
    # older format: tables built from its numbers, the command read from its .md
    assert "| ours mb per s | 99.50 |" in bench_md and "| speedup | 10.40 |" in bench_md
    assert "| stream | 250x400 .dat |" in bench_md
    assert "| 1000 | 0.0299 |" in bench_md and "| 50,000 | 3.65 |" in bench_md
    assert "`python scripts/bench_speed.py --ticks 2000`" in bench_md and "Old CPU (2 cores)" in bench_md
    # the documented benchmark comes first (alphabetical here), sections in order
    assert bench_md.index("## Quality on fakes") < bench_md.index("## Speed")

    readme = (repo / "README.md").read_text(encoding="utf-8")
    start, end = readme.index("<!-- results:start -->"), readme.index("<!-- results:end -->")
    assert readme[:start] == README_HEAD and readme[end + len("<!-- results:end -->"):] == README_TAIL
    section = readme[start:end]
    assert "OLD NUMBER" not in section
    # headline rows carry their rerun command; non-headline tables stay in BENCHMARKS.md only
    assert "| TFP | 23.46 | 0.6543 | `python scripts/bench_quality.py --count 3` |" in section
    assert "| speedup | 10.40 | `python scripts/bench_speed.py --ticks 2000` |" in section
    assert "Sweep table" not in section and "250x400" not in section  # README: headline numbers only
    assert "Test CPU 9000" in section and "`abc123`" in section and "seed=987654" not in section  # settings: linked
    assert "(BENCHMARKS.md#quality-on-fakes)" in section
    assert "![quality crops](docs/figures/quality_crops.png)" in section and "unrelated" not in section


def test_rerun_is_stable_and_check_sees_new_numbers(make_results: ModuleType, repo: Path) -> None:
    assert _run(make_results, repo) == 0
    first = (repo / "README.md").read_text(encoding="utf-8")
    assert _run(make_results, repo, "--check") == 0  # idempotent: no date stamps, nothing changed
    assert _run(make_results, repo) == 0 and (repo / "README.md").read_text(encoding="utf-8") == first

    data = json.loads((repo / "benchmarks" / "quality.json").read_text())
    data["tables"][0]["rows"][1][1] = 31.25
    _write_json(repo / "benchmarks" / "quality.json", data)
    assert _run(make_results, repo, "--check") == 1  # stale now, and --check writes nothing
    assert (repo / "README.md").read_text(encoding="utf-8") == first
    assert _run(make_results, repo) == 0
    assert "| ours | 31.25 | 0.9000 |" in (repo / "README.md").read_text(encoding="utf-8")


def test_missing_markers_and_bad_json(make_results: ModuleType, repo: Path) -> None:
    (repo / "README.md").write_text("# Project\n\n## Results\n\nno markers\n", encoding="utf-8")
    with pytest.raises(make_results.ResultsError, match=r"README\.md: needs exactly one '<!-- results:start -->'"):
        _run(make_results, repo)
    assert (repo / "README.md").read_text(encoding="utf-8") == "# Project\n\n## Results\n\nno markers\n"
    assert not (repo / "BENCHMARKS.md").exists()  # nothing written when one output cannot be built

    (repo / "benchmarks" / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(make_results.ResultsError, match=r"broken\.json: cannot read it as JSON"):
        _run(make_results, repo)
    (repo / "benchmarks" / "broken.json").write_text(json.dumps({"tables": [{"rows": []}]}), encoding="utf-8")
    with pytest.raises(make_results.ResultsError, match=r"broken\.json: tables\[0\] needs 'columns' and 'rows'"):
        _run(make_results, repo)


def test_readme_shows_only_the_chosen_benchmarks_and_links_the_rest(make_results: ModuleType, repo: Path) -> None:
    assert make_results.main(["--benchmarks", str(repo / "benchmarks"), "--readme", str(repo / "README.md"),
                              "--out", str(repo / "BENCHMARKS.md"), "--repo", str(repo),
                              "--readme-benchmarks", "quality"]) == 0  # fmt: skip
    readme = (repo / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("<!-- results:start -->"):readme.index("<!-- results:end -->")]
    assert "| ours | 30.10 | 0.9000 |" in section and "| speedup |" not in section
    assert "More: [Speed](BENCHMARKS.md#speed)." in section
    assert "| speedup | 10.40 |" in (repo / "BENCHMARKS.md").read_text(encoding="utf-8")
