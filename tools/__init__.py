"""The KG tools an LLM may call: entity lookup, shortest paths, neighbour expansion."""
