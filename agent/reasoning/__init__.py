"""The LangGraph agent: state (``state``), wiring (``graph``), nodes (``nodes`` chooses between
``kg_nodes`` and ``llm_nodes``), LLM access (``llm``, ``schemas``), KG search (``search``,
``mentions``), step grounding (``grounding``), wording (``verbalise``) and the resources a node
needs, opened from plain settings (``resources``, ``context``)."""
