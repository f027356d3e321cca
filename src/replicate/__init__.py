"""replicate — re-run published sarcoma radiomics studies and compare reported with reproduced metrics."""

__version__ = "0.1.0"
