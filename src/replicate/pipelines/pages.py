"""Display helpers shared by the appendix pages (``notebooks/audit.md``, ``notebooks/ibsi.md``)."""

from __future__ import annotations

import pandas as pd


def show(df: pd.DataFrame | None, caption: str | None = None) -> None:
    """Display ``df`` as a left-aligned table without its index (a note when there is nothing to show)."""
    from IPython.display import Markdown, display

    if df is None or len(df) == 0:
        display(Markdown("*(nothing to show)*"))
        return
    sty = df.style.hide(axis="index").set_properties(**{"text-align": "left", "vertical-align": "top"})
    sty = sty.format(precision=4, na_rep="")
    display(sty.set_caption(caption) if caption else sty)
