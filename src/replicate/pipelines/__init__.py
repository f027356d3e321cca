"""Paper pipelines: the step functions each chapter notebook calls (issue 14)."""
