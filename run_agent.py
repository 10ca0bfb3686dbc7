"""The MedReason Agent command line (also installed as ``medreason``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from agent.config import Settings, default_kg_dir, default_primekg_dir
from agent.console import RichProgress, err
from agent.records import InputError, read_raw
from agent.runner import RunOptions, prepare_run_dir, run_dataset
from graphs.cache import CacheError
from graphs.kg_dir import SOURCES, LoadedKG, Source, build_kg, open_kg

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
kg_app = typer.Typer(no_args_is_help=True, help="Build and inspect knowledge graphs.")
app.add_typer(kg_app, name="kg")
out = Console()

KgDir = Annotated[
    Optional[Path],
    typer.Option("--kg-dir", help="Knowledge graph directory (default: the HPO graph in your cache dir)."),
]
EXIT_CANNOT_START = 2


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_CANNOT_START)


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _open(settings: Settings) -> LoadedKG:
    from graphs.embedding import Embedder

    is_default = settings.kg_dir == default_kg_dir()
    if not is_default and not settings.kg_dir.exists():
        raise fail(
            f"--kg-dir {settings.kg_dir} does not exist; build a graph there with "
            f"`kg build --source hpo --kg-dir {settings.kg_dir}`"
        )
    try:
        return open_kg(
            settings.kg_dir, Embedder(settings.embedding_model), RichProgress(),
            chroma_url=settings.chroma_url, default_source=Source("hpo") if is_default else None,
        )
    except CacheError as exc:
        raise fail(str(exc)) from exc


@kg_app.command("build")
def kg_build(
    source: Annotated[str, typer.Option(help=f"One of: {', '.join(SOURCES)}.")] = "hpo",
    input: Annotated[Optional[Path], typer.Option("--input", help="Source file (PrimeKG kg.csv, triples TSV/CSV).")] = None,
    kg_dir: KgDir = None,
) -> None:
    """Build a knowledge graph and its entity index into a KG directory."""
    from graphs.embedding import Embedder
    from graphs.triples import TriplesFormatError

    settings = _settings(kg_dir=kg_dir)
    if source not in SOURCES:
        raise fail(f"unknown --source {source!r}; choose one of {', '.join(SOURCES)}")
    try:
        loaded = build_kg(settings.kg_dir, Source(source, input), Embedder(settings.embedding_model),
                          RichProgress(), chroma_url=settings.chroma_url)
    except (FileNotFoundError, ValueError, TriplesFormatError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"Built {loaded.manifest.nodes:,} nodes and {loaded.manifest.edges:,} facts in {settings.kg_dir}")


@kg_app.command("download")
def kg_download(
    dataset: Annotated[str, typer.Argument(help="The dataset to fetch: primekg.")],
    kg_dir: Annotated[
        Optional[Path], typer.Option("--kg-dir", help="Where to put kg.csv and the built graph (default: kg/primekg in your cache dir).")
    ] = None,
    url: Annotated[Optional[str], typer.Option(help="Fetch from this URL instead (a mirror).")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected SHA-256 of the file.")] = None,
    build: Annotated[bool, typer.Option("--build/--no-build", help="Build the graph and its entity index afterwards.")] = True,
    force: Annotated[bool, typer.Option(help="Download again even if kg.csv is already there.")] = False,
) -> None:
    """Download a knowledge graph's source (resumable, verified), then build it."""
    from graphs.download import PRIMEKG_URL, DownloadError, download
    from graphs.embedding import Embedder

    if dataset != "primekg":
        raise fail(f"unknown dataset {dataset!r}; the only one is primekg")
    settings = _settings(kg_dir=kg_dir or default_primekg_dir())
    target = settings.kg_dir / "kg.csv"
    progress = RichProgress()
    if target.exists() and not force:
        progress.note(f"{target} is already downloaded (pass --force to fetch it again)")
    else:
        try:
            download(url or PRIMEKG_URL, target, progress, sha256=sha256)
        except (DownloadError, OSError) as exc:
            raise fail(str(exc)) from exc
        err.print(f"Downloaded {target} ({target.stat().st_size:,} bytes)")
    if not build:
        return
    try:
        loaded = build_kg(settings.kg_dir, Source("primekg", target), Embedder(settings.embedding_model),
                          progress, chroma_url=settings.chroma_url)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"Built {loaded.manifest.nodes:,} nodes and {loaded.manifest.edges:,} facts in {settings.kg_dir}")
    err.print(f"Use it with --kg-dir {settings.kg_dir}")


@kg_app.command("info")
def kg_info(kg_dir: KgDir = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts of the graph: nodes, facts, node types, relations."""
    settings = _settings(kg_dir=kg_dir)
    m = _open(settings).manifest
    info = {
        "kg_dir": str(settings.kg_dir), "source": m.source.kind, "nodes": m.nodes, "edges": m.edges,
        "node_types": m.node_types, "relations": m.relations,
        "embedding_model": m.embedding_model, "index_entries": m.index_entries, "created": m.created,
    }
    if as_json:
        print(json.dumps(info))
        return
    out.print(f"[bold]{info['kg_dir']}[/] ({m.source.kind}, built {m.created})")
    out.print(f"{m.nodes:,} nodes, {m.edges:,} facts, {m.index_entries:,} index entries ({m.embedding_model})")
    for title, counts in (("node type", m.node_types), ("relation", m.relations)):
        table = Table(title_justify="left")
        table.add_column(title)
        table.add_column("count", justify="right")
        for name, count in counts.items():
            table.add_row(name, f"{count:,}")
        out.print(table)


@kg_app.command("path")
def kg_path(
    a: str, b: str, kg_dir: KgDir = None,
    max_hops: Annotated[int, typer.Option()] = 4, limit: Annotated[int, typer.Option()] = 10,
) -> None:
    """All shortest paths between two nodes (ids or exact names)."""
    from graphs.path_search import shortest_paths
    from graphs.paths import describe

    kg = _open(_settings(kg_dir=kg_dir)).kg
    try:
        source, target = kg.resolve(a), kg.resolve(b)
    except KeyError as exc:
        raise fail(exc.args[0]) from exc
    paths = shortest_paths(kg.graph, [source], [target], max_hops=max_hops, limit=limit)
    if not paths:
        out.print(f"No path of at most {max_hops} hops between {a!r} and {b!r}.")
    for p in paths:
        out.print(describe(kg, p)["text"], highlight=False)


@kg_app.command("neighbours")
def kg_neighbours(
    node: str, kg_dir: KgDir = None,
    relation: Annotated[Optional[str], typer.Option()] = None,
    type: Annotated[Optional[str], typer.Option("--type")] = None,
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """The most specific neighbours of a node (id or exact name)."""
    from graphs.neighbours import neighbours

    kg = _open(_settings(kg_dir=kg_dir)).kg
    try:
        node_id = kg.resolve(node)
    except KeyError as exc:
        raise fail(exc.args[0]) from exc
    for n in neighbours(kg, node_id, relation=relation, type=type, limit=limit):
        arrow = f"—{n.relation}→" if n.forward else f"←{n.relation}—"
        out.print(f"{kg.name(node_id)} {arrow} {n.name} [dim]({n.type}, {n.node_id}, degree {n.degree})[/]", highlight=False)


@app.command("run")
def run(
    input: Annotated[Path, typer.Argument(help="Records: JSONL or a JSON array (MedQA schema).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory for results, summary and checkpoints.")],
    kg_dir: KgDir = None,
    offline: Annotated[bool, typer.Option(help="Never call an LLM, even if one is configured.")] = False,
    limit: Annotated[Optional[int], typer.Option(help="Process at most N records.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    concurrency: Annotated[int, typer.Option(help="Samples in flight at once.")] = 1,
    model: Annotated[Optional[str], typer.Option(help="LLM model name; without one the run is KG-only. [env: MEDREASON_MODEL]")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint. [env: OPENAI_BASE_URL]")] = None,
) -> None:
    """Turn every QA record of INPUT into verified, KG-grounded reasoning."""
    from agent.context import AgentContext
    from agent.llm import make_llm

    settings = _settings(kg_dir=kg_dir, offline=offline or None, model=model, base_url=base_url)
    try:
        total = sum(1 for _ in read_raw(input))
        prepare_run_dir(out_dir, resume)
    except InputError as exc:
        raise fail(str(exc)) from exc
    loaded = _open(settings)
    llm = make_llm(settings)
    if llm:
        err.print(f"Mode: [bold]LLM[/] ({settings.model} at {settings.base_url or 'the OpenAI API'})", highlight=False)
    else:
        err.print("Mode: [bold]KG-only[/] (" + ("--offline" if settings.offline else "no LLM configured: pass --model") + ")")
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings, llm)
    progress = RichProgress().task("Samples", min(total, limit or total))
    finished = []

    def on_result(row: dict) -> None:
        finished.append(row)
        progress(len(finished))

    try:
        summary = asyncio.run(run_dataset(input, out_dir, ctx, RunOptions(limit, resume, concurrency, on_result)))
    except InputError as exc:
        raise fail(str(exc)) from exc
    _print_summary(summary, out_dir)


def _print_summary(summary: dict, out_dir: Path) -> None:
    counts = summary["counts"]
    table = Table(title=f"{summary['records']} records ({summary['mode']})", title_justify="left")
    for column in ("accepted", "rejected", "error", "with path", "mean attempts", "wall time"):
        table.add_column(column, justify="right")
    table.add_row(
        str(counts["accepted"]), str(counts["rejected"]), str(counts["error"]),
        f"{summary['with_path_share']:.0%}", f"{summary['mean_attempts']:.2f}", f"{summary['wall_time_s']:.1f}s",
    )
    out.print(table)
    for title, reasons in (("Rejected", summary["rejection_reasons"]), ("Errors", summary["error_reasons"])):
        for reason, n in reasons.items():
            out.print(f"  {title}: {reason} × {n}", highlight=False)
    out.print(f"Results: {out_dir / 'results.jsonl'}\nSummary: {out_dir / 'summary.json'}")


if __name__ == "__main__":
    app()
