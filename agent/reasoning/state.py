"""The per-sample state: one typed, JSON-serialisable object that every node reads and updates.

Every field holds plain JSON data (dicts, lists, strings, numbers), so each SQLite checkpoint
is readable as it is and replayable by ``replay``.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from typing_extensions import NotRequired

from graphs.paths import PathRecord

# "unverified": the answer was no gold answer but picked by the KG evidence that would verify it
# (Record.answer_chosen, the chat without a known answer), so reaching it confirms nothing.
Status = Literal["running", "retry", "accepted", "rejected", "error", "unverified"]
Method = Literal["exact", "embedding", "llm"]


# An option label: a letter, two letters (60-option exports) or a number; records are read
# (agent.runs.records) and the verifier's replies parsed (agent.reasoning.schemas) with it.
OPTION_LABEL = r"[A-Za-z]{1,2}|\d{1,3}"


class Record(TypedDict):
    id: str
    question: str
    options: dict[str, str]  # letter -> text; empty for free-text questions
    answer: str
    answer_idx: str | None  # gold letter for multiple choice
    dataset: NotRequired[str]  # the detected input schema: medqa, medmcqa, pubmedqa, huatuogpt-o1, custom
    extra: NotRequired[dict[str, Any]]  # kept from the source: PubMedQA context/long answer, explanations, CoT
    position: NotRequired[int]  # 0-based position in its input file (exported as id_in_dataset)
    answer_chosen: NotRequired[bool]  # True: no known answer; ``answer`` is the KG's best-supported candidate


class Mention(TypedDict):
    text: str
    role: str  # "question", "answer" or "option:<letter>"
    type: str | None  # a node type when the extractor knows it


class NodeChoice(TypedDict):
    """A graph node a mention may map to (the index's search hit, as plain JSON for the state)."""

    node_id: str
    name: str
    type: str
    score: float


class Mapping(TypedDict):
    mention: str
    role: str
    node_id: str
    name: str
    type: str
    score: float
    method: Method
    alternatives: list[NodeChoice]  # next-best nodes, used when a retry widens the search


class SearchSettings(TypedDict):
    """How one attempt searches the graph; each retry widens it one step (agent.reasoning.search)."""

    attempt: int
    max_hops: int
    paths_per_pair: int
    extra_hops: int  # also accept paths this many hops longer than the shortest
    alternative_mappings: bool  # add second-best nodes of each mention
    expand_answer: bool  # also reach the answer through its neighbours
    exclude_used: bool  # skip paths an earlier attempt already used


class Verification(TypedDict):
    predicted: str | None
    correct: bool | None  # None: there was no known answer to check against (status "unverified")
    reason: str  # a category that failures are grouped by ("no path", "verifier disagreed")
    detail: str
    scores: dict[str, float]


class AttemptLog(TypedDict):
    attempt: int
    settings: SearchSettings
    paths: int
    correct: bool
    reason: str
    exploration: NotRequired[str]  # LLM mode, retries: what exploring the KG with tools did, or why it did not


class Thought(TypedDict):
    """A reasoning model's thinking behind one node's answer: kept apart from the reasoning."""

    node: str
    text: str


class Usage(TypedDict):
    llm_calls: int  # every request sent, failed ones and repairs included
    input_tokens: int
    output_tokens: int
    repairs: NotRequired[int]  # of those, requests that asked again after a malformed answer


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    keys = ("llm_calls", "input_tokens", "output_tokens", "repairs")
    return {k: (left or {}).get(k, 0) + (right or {}).get(k, 0) for k in keys}  # type: ignore[return-value]


Label = Literal["grounded", "contradicted", "unsupported", "unlinked"]


class StepEntity(TypedDict):
    text: str  # as the step writes it
    node_id: str
    name: str


class GroundedStep(TypedDict):
    text: str
    label: Label
    entities: list[StepEntity]
    evidence: str | None  # the fact or path that backs (or denies) the step; why not, when unsupported


class Grounding(TypedDict):
    """Each reasoning step checked against the graph (agent.reasoning.grounding)."""

    score: float | None  # grounded / (grounded + contradicted + unsupported); None with no such step
    adherence: float | None  # share of the pruned paths the reasoning follows in order; None without paths
    steps: list[GroundedStep]
    # steps past grounding.MAX_GRADED_STEPS, not graded (present only when there are some)
    ungraded_steps: NotRequired[int]


class SampleState(TypedDict, total=False):
    record: Record
    entities: list[Mention]
    mappings: list[Mapping]
    search: SearchSettings
    paths: list[PathRecord]
    pruned: list[PathRecord]
    used_paths: Annotated[list[str], operator.add]
    reasoning: str
    explanation: str  # the model's closing message after exploring the KG with tools
    verification: Verification
    grounding: Grounding
    relevance: float | None  # mean relevance of the pruned paths (agent.reasoning.relevance); None without
    attempts: Annotated[list[AttemptLog], operator.add]
    usage: Annotated[Usage, add_usage]
    # "node: why" for each node whose model answer stayed unusable, so its KG-only behaviour ran
    degraded: Annotated[list[str], operator.add]
    thinking: Annotated[list[Thought], operator.add]
    status: Status
