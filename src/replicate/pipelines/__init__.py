"""Paper pipelines: one module per chapter, the step functions its notebook calls."""
