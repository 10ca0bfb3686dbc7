"""Looking at what the agent did: one question at a time (``chat``), a sample's checkpoints step
by step (``replay``), and a whole run in the browser (``view``)."""
