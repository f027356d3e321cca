"""The paper pipelines: each chapter's steps, called by its notebook (``notebooks/<id>.md``)."""
