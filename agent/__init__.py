"""The MedReason agent: a LangGraph state machine from a QA record to verified KG-grounded reasoning.

Three rooms, one per kind of change:

- ``agent.reasoning``: the LangGraph agent itself: its state, the graph wiring, the nodes
  (KG-only and LLM behaviours), LLM access, entity mentions, path search and grounding, and the
  loader that opens the graph, index and model from plain settings.
- ``agent.runs``: dataset runs: reading records, running them (locally or on Ray), results,
  fingerprints, checkpoint stores, exports, merges and reviews.
- ``agent.inspection``: looking at what a run did: the interactive chat, replay of checkpoints
  and the browser viewer.

Shared by all three: ``agent.config`` (the runtime context of plain settings),
``agent.redaction`` (secrets out of every message) and ``agent.console`` (terminal rendering for
the CLI, ``run_agent.py``).
"""
