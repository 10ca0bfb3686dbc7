"""The MedReason agent: a LangGraph state machine from a QA record to verified KG-grounded reasoning."""
