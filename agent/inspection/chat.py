"""Interactive chat: ask a medical question, watch each node's result as it finishes.

A turn is one run of the agent's graph, checkpointed as thread ``chat-<session>-<n>`` in
the chat store, so ``replay`` works on chat turns as on dataset samples.

Without a known answer the turn first picks one by KG evidence (``agent.inspection.questions``).
The best candidate becomes the turn's answer and the graph runs on it as on any record;
since the same score chose it, the turn shows the ranking, never a verification mark.
The answer is KG-grounded: it says what the graph's paths support, not medical advice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from agent.console import timeline_table
from agent.inspection import replay
from agent.inspection.questions import NEIGHBOURS, Question, parse_question, probe
from agent.reasoning.context import AgentContext
from agent.reasoning.graph import RECURSION_LIMIT
from agent.reasoning.llm import failure_message
from agent.reasoning.state import Record
from agent.runs.checkpoints import CHECKPOINTS
from agent.runs.results import result_row
from agent.runs.samples import SAMPLE_FAILURES
from graphs.neighbours import neighbours
from graphs.paths import describe, ranked_paths

DISCLAIMER = "KG-grounded answer: it reports what the knowledge graph's paths support. It is not medical advice."
HELP = """\
Type a question, optionally with options (A) … B) …, or A. … B. …, on the same line or on
lines of their own — end a line with \\ to continue on the next) and a known answer
(a last line "Answer: B" or "Answer: text"). Without an answer, the agent picks one by KG evidence.

  /paths            every path found in the last turn (* = kept after pruning)
  /path A -> B      shortest paths between two nodes (names or ids)
  /expand NAME      the most specific neighbours of a node
  /entities         the last turn's mentions and the nodes they map to
  /trace            the last turn's checkpoint timeline
  /save FILE        append the last turn to FILE as a results.jsonl record
  /help             this help
  /quit             leave (also Ctrl-D); Ctrl-C stops a running turn"""

SHOWN_PATHS = 8


# -- the session -------------------------------------------------------------------------------
class ChatSession:
    """The read–run–show loop. ``read`` is ``input``-like (raises EOFError at the end, and
    KeyboardInterrupt on Ctrl-C); output goes to ``console``."""

    def __init__(
        self, ctx: AgentContext, app, read: Callable[[str], str], console: Console, session: str,
        store: Path | None = None,
    ) -> None:
        self.ctx, self.app, self.read, self.console = ctx, app, read, console
        self.session, self.store = session, store
        self.turns = 0
        self.last: dict | None = None  # thread_id, state of the last turn

    # loop
    def run(self) -> None:
        mode = "LLM" if self.ctx.settings.llm_configured else "KG-only"
        self.console.print(f"[bold]MedReason chat[/] ({mode}). Type a question, /help for commands, /quit to leave.")
        while True:
            try:
                line = self._read_lines()
            except EOFError:
                break
            except KeyboardInterrupt:
                self.console.print("[dim](Ctrl-C: type /quit or press Ctrl-D to leave)[/]")
                continue
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if self.command(line) == "quit":
                    break
                continue
            try:
                self.turn(line)
            except KeyboardInterrupt:
                thread = f"chat-{self.session}-{self.turns}"
                self.console.print(f"[yellow]Interrupted.[/] The turn stopped; its finished steps are in thread {thread}.")
            except SAMPLE_FAILURES as exc:  # the LLM failed for good: this turn ends, the session goes on
                thread = f"chat-{self.session}-{self.turns}"
                message = failure_message(exc)
                self.console.print(f"[red]The turn failed[/]: {escape(message)}. Its finished steps are in thread "
                                   f"{thread}; ask again, or /quit.", highlight=False)
        if self.store:
            self.console.print(f"Chat checkpoints: {self.store} (replay with: python run_agent.py replay {self.store})",
                               highlight=False, soft_wrap=True, markup=False)

    def _read_lines(self) -> str:
        lines = [self.read("> ")]
        while lines[-1].rstrip().endswith("\\"):
            lines[-1] = lines[-1].rstrip()[:-1]
            lines.append(self.read("… "))
        return "\n".join(lines)

    # one question
    def turn(self, text: str) -> dict | None:
        question = parse_question(text)
        if not question.question:
            self.console.print("[red]No question found.[/]")
            return None
        self.turns += 1
        thread = f"chat-{self.session}-{self.turns}"
        chosen = None
        if question.answer is None:
            chosen = self._choose(question)
            if chosen is None:
                return None
        record = Record(id=thread, question=question.question, options=question.options,
                        answer=question.answer, answer_idx=question.answer_idx)
        if chosen is not None:
            record["answer_chosen"] = True  # verify then says "unverified", never accepted / correct
        config = {"configurable": {"thread_id": thread}, "recursion_limit": RECURSION_LIMIT}
        for update in self.app.stream({"record": record}, config, context=self.ctx.settings, stream_mode="updates"):
            for node, delta in update.items():
                self.show(node, delta or {}, chosen_here=chosen is not None)
        state = self.app.get_state(config).values
        self.last = {"thread_id": thread, "state": state}
        self._conclude(question, state, chosen)
        return state

    def _choose(self, question: Question) -> str | None:
        """Fill in the answer with the best candidate by KG evidence; None when there is none."""
        found = probe(self.ctx, question)
        kind = "option" if question.options else "candidate"
        best = next(iter(found.scores.items()), None)
        if best is None or best[1] == 0:
            mapped = ", ".join(sorted({m["name"] for m in found.mappings if m["role"] == "question"})) or "none"
            self.console.print(f"[yellow]No KG evidence for any {kind}[/] (question nodes: {escape(mapped)}); "
                               "the graph gives nothing to ground an answer in.", highlight=False)
            return None
        table = Table(title=f"Candidate answers by KG evidence ({kind}s)", title_justify="left")
        table.add_column(kind)
        table.add_column("evidence", justify="right")
        for key, score in list(found.scores.items())[:5]:
            label = f"{key}. {found.names[key]}" if question.options else found.names[key]
            table.add_row(escape(label), f"{score:g}")
        self.console.print(table)
        leaders = [k for k, s in found.scores.items() if s == best[1]]
        if len(leaders) > 1:
            self.console.print(f"[yellow]Tie[/] between {escape(', '.join(found.names[k] for k in leaders))}; taking the first.",
                               highlight=False)
        if question.options:
            question.answer_idx, question.answer = best[0], question.options[best[0]]
        else:
            question.answer = found.names[best[0]]
        return best[0]

    def _conclude(self, question: Question, state: dict, chosen: str | None) -> None:
        verification = state.get("verification") or {}
        label = f"{question.answer_idx}. {question.answer}" if question.answer_idx else question.answer
        status = state.get("status")
        if chosen is not None:
            # The verifier's score is the one that chose the answer: it cannot confirm it.
            self.console.print(f"[bold green]Answer:[/] {escape(label)} — the KG's best-supported option "
                               "(chosen by KG evidence, not independently verified).", highlight=False)
        else:
            ok = "reached" if status == "accepted" else f"not reached ({verification.get('reason')})"
            self.console.print(f"[bold]Known answer[/] {escape(label)}: {ok}.", highlight=False)
        self.console.print(f"[dim]{DISCLAIMER}[/]")

    # showing node results
    def show(self, node: str, delta: dict, chosen_here: bool = False) -> None:
        """One node's result; ``chosen_here`` when this turn's answer was chosen by KG evidence."""
        c = self.console
        if node == "extract":
            by_role: dict[str, list[str]] = {}
            for m in delta.get("entities", []):
                by_role.setdefault(m["role"], []).append(m["text"])
            c.print("[bold cyan]Entities[/]", highlight=False)
            for role, texts in by_role.items():
                c.print(f"  {role}: {escape(', '.join(texts))}", highlight=False, emoji=False)
        elif node == "map":
            table = Table(title="Mapped nodes", title_justify="left", title_style="bold cyan")
            for column in ("mention", "role", "node", "type", "score", "method"):
                table.add_column(column)
            for m in delta.get("mappings", []):
                table.add_row(escape(m["mention"]), escape(m["role"]), escape(f"{m['name']} ({m['node_id']})"), escape(m["type"]),
                              f"{m['score']:.2f}", m["method"])
            c.print(table)
        elif node == "path":
            search, paths = delta.get("search", {}), delta.get("paths", [])
            c.print(f"[bold cyan]Paths[/] (attempt {search.get('attempt')}, ≤ {search.get('max_hops')} hops): "
                    f"{len(paths)} found", highlight=False)
            self._paths(paths)
        elif node == "prune":
            c.print(f"[bold cyan]Pruned paths[/]: {len(delta.get('pruned', []))} kept", highlight=False)
            self._paths(delta.get("pruned", []))
        elif node == "generate":
            reasoning = delta.get("reasoning") or "(no reasoning: no path to reason over)"
            c.print(Panel(escape(reasoning), title="Reasoning", title_align="left"))
        elif node == "verify" and chosen_here:
            scores = sorted(delta.get("verification", {}).get("scores", {}).items(), key=lambda kv: -kv[1])
            c.print("[bold cyan]KG evidence ranking[/] (it chose the answer, so it does not verify it): "
                    + (", ".join(f"{k} {s:g}" for k, s in scores) or "none"), highlight=False)
        elif node == "verify":
            v, status = delta.get("verification", {}), delta.get("status")
            mark = "[green]✓[/]" if v.get("correct") else "[red]✗[/]"
            line = f"[bold cyan]Verification[/] {mark} {escape(v.get('reason', ''))}"
            if v.get("detail"):
                line += f" — {escape(v['detail'])}"
            c.print(line + f"  → status: [bold]{status}[/]", highlight=False)
            if v.get("scores"):
                c.print("  option evidence: " + ", ".join(f"{k} {s:g}" for k, s in v["scores"].items()), highlight=False,
                        markup=False)

    def _paths(self, paths: list[dict], limit: int = SHOWN_PATHS) -> None:
        for p in paths[:limit]:
            self.console.print(f"  {escape(p['text'])}", highlight=False)
        if len(paths) > limit:
            self.console.print(f"  [dim]… and {len(paths) - limit} more (/paths)[/]")

    # commands
    def command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        handlers = {
            "/quit": lambda: "quit", "/exit": lambda: "quit", "/help": self._help, "/paths": self._all_paths,
            "/path": lambda: self._path(arg), "/expand": lambda: self._expand(arg), "/entities": self._entities,
            "/trace": self._trace, "/save": lambda: self._save(arg),
        }
        handler = handlers.get(name.lower())
        if handler is None:
            self.console.print(f"[red]Unknown command {escape(name)}[/]; /help lists them.")
            return None
        return handler()

    def _help(self) -> None:
        self.console.print(escape(HELP), highlight=False)

    def _need_turn(self) -> bool:
        if self.last is None:
            self.console.print("[dim]No turn yet: ask a question first.[/]")
            return False
        return True

    def _all_paths(self) -> None:
        if not self._need_turn():
            return
        state = self.last["state"]
        kept = {tuple(p["nodes"]) for p in state.get("pruned", [])}
        paths = state.get("paths", [])
        self.console.print(f"[bold cyan]{len(paths)} paths[/] of the last attempt (* = kept after pruning)", highlight=False)
        for p in paths:
            self.console.print(f"  {'*' if tuple(p['nodes']) in kept else ' '} {escape(p['text'])}", highlight=False)

    def _node(self, ref: str) -> str | None:
        """A node id from an id, an exact name, or else the nearest name in the entity index."""
        try:
            return self.ctx.kg.resolve(ref)
        except KeyError:
            (hits,) = self.ctx.index.search([ref], k=1)
            if hits and hits[0].score >= self.ctx.settings.min_score:
                return hits[0].node_id
        self.console.print(f"[red]No node named {escape(ref)!r}[/]", highlight=False)
        return None

    def _path(self, arg: str) -> None:
        parts = re.split(r"\s*(?:->|→)\s*", arg)
        if len(parts) != 2 or not all(parts):
            self.console.print("Usage: /path A -> B")
            return
        source, target = self._node(parts[0]), self._node(parts[1])
        if source is None or target is None:
            return
        hops = max(self.ctx.settings.max_hops, 4)
        found = ranked_paths(self.ctx.kg, [source], [target], max_hops=hops, limit=10,
                           max_work=self.ctx.settings.path_max_work).paths
        if not found:
            self.console.print(f"No path of at most {hops} hops between {escape(parts[0])} and {escape(parts[1])}.")
        for p in found:
            self.console.print(f"  {escape(describe(self.ctx.kg, p)['text'])}", highlight=False)

    def _expand(self, arg: str) -> None:
        if not arg:
            self.console.print("Usage: /expand NAME")
            return
        node_id = self._node(arg)
        if node_id is None:
            return
        kg = self.ctx.kg
        self.console.print(f"[bold cyan]Neighbours of {escape(kg.name(node_id))}[/] ({escape(node_id)}), most specific first",
                           highlight=False)
        for n in neighbours(kg, node_id, limit=NEIGHBOURS):
            self.console.print(f"  {escape(kg.name(node_id))} {escape(n.arrow)} {escape(n.name)} [dim]({escape(n.type)}, degree {n.degree})[/]",
                               highlight=False)

    def _entities(self) -> None:
        if not self._need_turn():
            return
        state = self.last["state"]
        self.show("extract", {"entities": state.get("entities", [])})
        self.show("map", {"mappings": state.get("mappings", [])})

    def _trace(self) -> None:
        if not self._need_turn():
            return
        thread = self.last["thread_id"]
        table = timeline_table(replay.timeline(replay.branch(self.app, thread, 0)), f"Thread {thread}")
        self.console.print(table)

    def _save(self, arg: str) -> None:
        if not arg:
            self.console.print("Usage: /save FILE")
            return
        if not self._need_turn():
            return
        row = result_row(self.last["state"]["record"]["id"], self.last["thread_id"], self.last["state"])
        path = Path(arg).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        except OSError as exc:  # a directory, a read-only place, a full disk: say so, keep the session
            self.console.print(f"[red]Could not save[/] to {escape(str(path))}: {escape(exc.strerror or str(exc))}. "
                               "Nothing was written; /save FILE with another path.", highlight=False)
            return
        self.console.print(f"Saved turn {row['id']} to {escape(str(path))}", highlight=False)



def open_store(store: Path) -> Path:
    """The chat store, made a run directory that ``replay`` and ``view`` can open (its checkpoint
    database exists from the start). OSError when it cannot be made."""
    store.mkdir(parents=True, exist_ok=True)
    (store / CHECKPOINTS).touch()
    return store


def default_store() -> Path:
    """Where chat turns are checkpointed unless --store says otherwise."""
    import platformdirs

    return platformdirs.user_cache_path("medreason-agent") / "chat"


def terminal_reader(store: Path) -> Callable[[str], str]:
    """``input`` with line editing and a history file kept in the store (Python's readline)."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input
        return input
    history = store / "history"
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    import atexit

    atexit.register(lambda: _save_history(readline, history))
    return input


def _save_history(readline, history: Path) -> None:
    try:
        readline.write_history_file(history)
    except OSError:
        pass
