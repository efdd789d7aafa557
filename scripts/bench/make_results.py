"""Build BENCHMARKS.md and the README's "Results" section from ``benchmarks/*.json`` (never edit them by hand).

    python scripts/bench/make_results.py            # rewrite BENCHMARKS.md and README.md between the markers
    python scripts/bench/make_results.py --check    # exit 1 when either file is out of date (for CI)

BENCHMARKS.md gets one section per JSON file: its tables, the machine, the commit, the date, the settings and
the command that reruns it. README.md gets, between ``<!-- results:start -->`` and ``<!-- results:end -->``,
the headline tables (each row with its rerun command) and first figure of the benchmarks in ``README_BENCHMARKS``
(``--readme-benchmarks``) and a link to every other one, so the README stays short; the rest of it is untouched.

A benchmark JSON may state what to show (``scripts/bench/_bench_meta.py`` writes these keys):

- ``title``, ``command``, ``commit``, ``date``, ``settings`` (dict), ``model`` (dict or text);
- ``machine``: a dict (``cpu``, ``cpu_count``, ``gpu``, ``torch_threads``, ...) or text;
- ``tables``: ``[{"title", "columns", "rows", "note"?, "headline"?}]`` (rows are lists of cells);
- ``figures``: repository-relative PNG paths; ``readme_figures``: how many of them the README shows (default 1).

Older files without ``tables`` are shown as generic tables built from their numbers (lists of records, dicts
of records, and scalar key/value lists); their machine comes from ``cpu``/``device``/``gpu`` and their rerun
command from the backquoted ``python ... scripts/...`` line of the ``.md`` written next to them. Figures named
``docs/figures/<benchmark>_*.png`` are attached to that benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from spikegen_core.errors import SpikeGenError  # noqa: E402
from spikegen_core.utils import atomic_write  # noqa: E402

START, END = "<!-- results:start -->", "<!-- results:end -->"
# README order; benchmarks not listed follow alphabetically.
ORDER = ("core", "real", "nvs", "cfa", "prior", "prior_2d", "spike_io", "simulator", "video", "rasterizer",
         "process_data", "process_data_stream")
# Benchmarks whose headline tables the README shows; the others get a link to BENCHMARKS.md.
README_BENCHMARKS = ("nvs", "cfa", "core")
# README headline tables of files without "tables" (by generic title); others show their first table.
LEGACY_HEADLINES = {
    "nvs": ("results / sample", "results / fast-seed1", "time ratio cpu", "gap closed"),
    "spike_io": ("results",),
    "simulator": ("simulator",),
    "video": ("quality / dense 1000fps", "quality / deblur psnr", "speed"),
    "rasterizer": ("rows",),
}
# Keys that describe the run rather than results (not turned into tables for older files).
META_KEYS = {
    "benchmark", "title", "command", "commit", "date", "settings", "machine", "cpu", "cpu_count", "device", "gpu",
    "torch", "python", "numpy", "threads", "load", "load_average_1min", "load_average_1m", "tables", "figures",
    "readme_figures",
    "model", "warnings",
}


class ResultsError(SpikeGenError, ValueError):
    """A benchmark JSON or the README cannot be used to build the results."""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    headline: bool = False


@dataclass
class Benchmark:
    name: str
    title: str
    command: str
    commit: str
    machine: str
    date: str
    settings: dict[str, Any]
    tables: list[Table]
    model: str = ""
    figures: list[str] = field(default_factory=list)
    readme_figures: int = 1


# ----------------------------------------------------------------------------------------------- formatting
def fmt(value: Any) -> str:
    """A table cell: numbers with sensible precision, None as a dash, pipes escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        a = abs(value)
        if a == 0:
            return "0"
        if a >= 10_000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.1f}"
        if a >= 0.01:
            return f"{value:.4f}" if a < 1 else f"{value:.2f}"
        return f"{value:.2e}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    def numeric(i: int) -> bool:
        cells = [r[i] for r in rows if i < len(r) and r[i] is not None]
        return bool(cells) and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells)

    head = ["| " + " | ".join(fmt(c) for c in columns) + " |",
            "|" + "|".join("---:" if numeric(i) else "---" for i in range(len(columns))) + "|"]
    body = ["| " + " | ".join(fmt(r[i]) if i < len(r) else "" for i in range(len(columns))) + " |" for r in rows]
    return head + body


def label(key: str) -> str:
    return key.replace("_", " ")


# ----------------------------------------------------------------------------------------------- reading
def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _is_record(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(_is_scalar(x) or _short_list(x) for x in v.values())


def _short_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 8 and all(_is_scalar(x) for x in v)


def _records_table(title: str, records: list[dict[str, Any]], first: str | None = None,
                   keys: list[str] | None = None) -> Table:
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[r.get(c) for c in columns] for r in records]
    if first is not None and keys is not None:
        columns, rows = [first, *columns], [[k, *row] for k, row in zip(keys, rows, strict=True)]
    return Table(title, [label(c) for c in columns], rows)


def generic_tables(data: dict[str, Any], prefix: str = "") -> list[Table]:
    """Tables from an older JSON: records lists/dicts become tables, other numbers a key/value table."""
    scalars: list[list[Any]] = []
    tables: list[Table] = []
    for key, value in data.items():
        if not prefix and key in META_KEYS:
            continue
        title = f"{prefix} / {label(key)}" if prefix else label(key)
        if _is_scalar(value) or _short_list(value):
            scalars.append([label(key), value])
        elif isinstance(value, list) and value and all(_is_record(v) for v in value):
            tables.append(_records_table(title, value))
        elif isinstance(value, dict) and value and all(_is_record(v) for v in value.values()):
            tables.append(_records_table(title, list(value.values()), "", list(value)))
        elif isinstance(value, dict):
            tables += generic_tables(value, title)
        # long lists of numbers (per-repeat timings, ...) stay in the JSON
    if scalars:
        tables.insert(0, Table(prefix or "results", ["quantity", "value"], scalars))
    return tables


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine")
    if isinstance(m, dict):
        threads = m.get("torch_threads")
        cpu = f"{m.get('cpu', 'CPU not recorded')} ({m.get('cpu_count', '?')} cores"
        cpu += f", {threads} torch thread{'s' if threads != 1 else ''})" if threads else ")"
        return f"{m['gpu']} (GPU); {cpu}" if m.get("gpu") else f"{cpu}, no GPU"
    parts = [str(m)] if m else []
    if data.get("cpu"):
        cores = f" ({data['cpu_count']} cores)" if data.get("cpu_count") else ""
        parts.append(f"{data['cpu']}{cores}")
    gpu = data.get("gpu") or (data.get("device") if str(data.get("device", "cpu")) not in ("cpu", "") else None)
    if gpu:
        parts.append(f"{gpu} (GPU)")
    threads = data.get("threads", (data.get("settings") or {}).get("threads"))
    if threads:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    return ", ".join(parts) or "not recorded"


def _command(name: str, data: dict[str, Any], json_path: Path, repo: Path) -> str:
    if data.get("command"):
        return str(data["command"])
    md = json_path.with_suffix(".md")
    if md.is_file():
        text = md.read_text(encoding="utf-8")
        found = re.search(r"`((?:[A-Z_]+=\S+\s+)*python3?\s+\S*scripts/[\w./-]+\.py[^`]*)`", text)
        if found:
            return found.group(1)
        found = re.search(r"`(scripts/[\w./-]+\.py)`", text)
        if found:
            return f"python {found.group(1)}"
    if (repo / "scripts" / "bench" / f"bench_{name}.py").is_file():
        return f"python scripts/bench/bench_{name}.py"
    return "not recorded"


def _model(data: dict[str, Any]) -> str:
    m = data.get("model")
    if isinstance(m, dict):
        extra = ", ".join(f"{k} {fmt(v)}" for k, v in m.items() if k not in ("checkpoint", "sha256") and v is not None)
        sha = f" (sha256 {str(m['sha256'])[:12]})" if m.get("sha256") else ""
        return f"`{m.get('checkpoint', '?')}`{sha}" + (f", {extra}" if extra else "")
    return str(m) if m else ""


def _explicit_tables(data: dict[str, Any], path: Path) -> list[Table]:
    tables = []
    for i, t in enumerate(data["tables"]):
        if not isinstance(t, dict) or not isinstance(t.get("columns"), list) or not isinstance(t.get("rows"), list):
            raise ResultsError(f"{path}: tables[{i}] needs 'columns' and 'rows' lists; rerun its benchmark script "
                               "or fix the file")
        tables.append(Table(str(t.get("title", t.get("name", f"table {i + 1}"))), t["columns"], t["rows"],
                            str(t.get("note", "")), bool(t.get("headline", False))))
    return tables


def load_benchmark(path: Path, repo: Path = REPO, figures_dir: Path | None = None) -> Benchmark:
    """One ``benchmarks/<name>.json`` as a :class:`Benchmark` (raises :class:`ResultsError` when unusable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: cannot read it as JSON ({err}); rerun its benchmark script") from err
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object at the top level; rerun its benchmark script")
    name = str(data.get("benchmark", path.stem))
    tables = _explicit_tables(data, path) if "tables" in data else generic_tables(data)
    if "tables" not in data:
        for t in tables:
            t.headline = t.title in LEGACY_HEADLINES.get(name, ())
    if tables and not any(t.headline for t in tables):
        tables[0].headline = True
    figures = [str(f) for f in data.get("figures", [])]
    figures_dir = figures_dir or repo / "docs" / "figures"
    if figures_dir.is_dir():
        for png in sorted(figures_dir.glob(f"{name}_*.png")):
            rel = os.path.relpath(png, repo)
            if rel not in figures:
                figures.append(rel)
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    return Benchmark(
        name=name, title=str(data.get("title", label(name).capitalize())), command=_command(name, data, path, repo),
        commit=str(data.get("commit", "not recorded")), machine=_machine(data), date=str(data.get("date", "not recorded")),
        settings=settings, tables=tables, model=_model(data), figures=figures,
        readme_figures=int(data.get("readme_figures", 1)),
    )


def load_all(bench_dir: Path, repo: Path = REPO, figures_dir: Path | None = None) -> list[Benchmark]:
    paths = sorted(bench_dir.glob("*.json"))
    if not paths:
        raise ResultsError(f"{bench_dir}: no benchmark JSON files; run `bash scripts/bench_all.sh` first")
    benches = [load_benchmark(p, repo, figures_dir) for p in paths]
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(benches, key=lambda b: (rank.get(b.name, len(ORDER)), b.name))


# ----------------------------------------------------------------------------------------------- writing
def _settings_line(settings: dict[str, Any]) -> str:
    def plain(v: Any) -> str:
        return ", ".join(map(plain, v)) if isinstance(v, list) else "—" if v is None else str(v)

    items = [f"{k}={plain(v)}" for k, v in settings.items() if _is_scalar(v) or _short_list(v)]
    return "; ".join(items)


def _figure_lines(figures: list[str], repo: Path, out_dir: Path) -> list[str]:
    lines = []
    for f in figures:
        if (repo / f).is_file():
            rel = os.path.relpath(repo / f, out_dir).replace(os.sep, "/")
            lines += [f"![{Path(f).stem.replace('_', ' ')}]({rel})", ""]
    return lines


def render_benchmarks_md(benches: list[Benchmark], repo: Path, out_dir: Path) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python scripts/bench/make_results.py` from `benchmarks/*.json`; do not edit by hand. "
             "Rerun everything with `bash scripts/bench_all.sh` (`--quick` skips the slow ones).", ""]
    lines += [f"- [{b.title}](#{b.name.replace('_', '-')})" for b in benches] + [""]
    for b in benches:
        lines += [f'<a id="{b.name.replace("_", "-")}"></a>', "", f"## {b.title}", "",
                  f"- benchmark: `benchmarks/{b.name}.json`",
                  f"- machine: {b.machine}", f"- commit: `{b.commit}`", f"- date: {b.date}"]
        if b.model:
            lines.append(f"- model: {b.model}")
        lines += [f"- rerun: `{b.command}`", ""]
        for t in b.tables:
            lines += [f"### {t.title}", "", *markdown_table(t.columns, t.rows), ""]
            if t.note:
                lines += [t.note, ""]
        lines += _figure_lines(b.figures, repo, out_dir)
        if b.settings:
            lines += ["<details><summary>settings</summary>", "", "```json",
                      json.dumps(b.settings, indent=1, ensure_ascii=False), "```", "", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _anchor(title: str) -> str:
    """GitHub's anchor of a ``## title`` heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def render_readme_section(benches: list[Benchmark], repo: Path, out_dir: Path,
                          shown: tuple[str, ...] = README_BENCHMARKS) -> str:
    lines = ["", "_Built by `python scripts/bench/make_results.py` from `benchmarks/*.json` (numbers as measured, never "
             "edited by hand). Every row says how to rerun it; [BENCHMARKS.md](BENCHMARKS.md) has all tables, machines "
             "and settings; `bash scripts/bench_all.sh` reruns everything._", ""]
    others = []
    for b in benches:
        link = f"[{b.title}](BENCHMARKS.md#{_anchor(b.title)})"
        if b.name not in shown:
            others.append(link)
            continue
        lines += [f"### {b.title}", "", f"{b.machine}, commit `{b.commit}` ({b.date}); settings: {link}.", ""]
        for t in (t for t in b.tables if t.headline):
            rows = t.rows
            if t.columns == ["quantity", "value"]:  # generic key/value table: the README keeps the numbers only
                rows = [r for r in rows if isinstance(r[1], (int, float)) and not isinstance(r[1], bool)]
            rows = [[*r, f"`{b.command}`"] for r in rows]
            lines += [f"**{t.title}**", "", *markdown_table([*t.columns, "rerun"], rows), ""]
            if t.note:
                lines += [t.note, ""]
        lines += _figure_lines(b.figures[: b.readme_figures], repo, out_dir)
    if others:
        lines += ["More: " + " · ".join(others) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_section(readme: str, section: str, path: Path | str = "README.md") -> str:
    """``readme`` with the text between the markers replaced by ``section``; everything else kept byte for byte."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < 0 or readme.count(START) != 1 or readme.count(END) != 1 or end < start:
        raise ResultsError(f"{path}: needs exactly one '{START}' followed by one '{END}' (the Results section); "
                           "add them where the results should go")
    head = readme[: start + len(START)]
    return head + "\n" + section + readme[end:]


def build(bench_dir: Path, readme: Path, out: Path, repo: Path = REPO,
          figures_dir: Path | None = None, shown: tuple[str, ...] = README_BENCHMARKS) -> dict[Path, str]:
    """The new contents of ``out`` (BENCHMARKS.md) and ``readme``, without writing them."""
    benches = load_all(bench_dir, repo, figures_dir)
    try:
        readme_text = readme.read_text(encoding="utf-8")
    except OSError as err:
        raise ResultsError(f"{readme}: cannot read the README ({err})") from err
    section = render_readme_section(benches, repo, readme.parent, shown)
    return {out: render_benchmarks_md(benches, repo, out.parent), readme: replace_section(readme_text, section, readme)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks", help="folder of <name>.json results")
    p.add_argument("--readme", type=Path, default=REPO / "README.md")
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--repo", type=Path, default=REPO, help="root that figure and command paths are relative to")
    p.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    p.add_argument("--readme-benchmarks", nargs="+", default=list(README_BENCHMARKS),
                   help="benchmarks whose headline tables the README shows (the others are linked)")
    args = p.parse_args(argv)
    outputs = build(args.benchmarks, args.readme, args.out, args.repo, shown=tuple(args.readme_benchmarks))
    stale = [path for path, text in outputs.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run `python scripts/bench/make_results.py`")
        return 1 if stale else 0
    for path in stale:
        with atomic_write(path, "wb") as f:  # a reader never sees half a README
            f.write(outputs[path].encode("utf-8"))
    print(f"updated {', '.join(str(p) for p in stale) or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
