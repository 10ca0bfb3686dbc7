"""Dataset runs: records in (``records``), samples run locally or on Ray (``runner``, ``samples``,
``executors``), results and summary out (``results``), a run's identity (``fingerprint``), its
checkpoint store (``checkpoints``), and what is made of finished runs (``export``, ``reviews``,
``ground_file``; ``safe_write`` refuses output targets that would destroy a run), and evaluation
questions copied into a dataset or questions repeated across files (``overlap``). Files are
replaced through ``graphs.atomic``, the project's one atomic writer."""
