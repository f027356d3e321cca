"""Read a paper's plain text (as PDF-to-text gives it) and draft the audit spec of its reported numbers.

``replicate audit PAPER.txt [--json] [--draft OUT.yaml]`` calls :func:`audit_text`. The extraction is
regex- and tokenizer-based and keeps, for every number, the sentence or table row it came from
(``where.quote``, ``where.line``):

* **sentences**: a metric name (AUC, C-index, sensitivity, specificity, accuracy, PPV, NPV, balanced
  accuracy, error rate) followed by its value (a fraction or a percentage) and an optional CI
  ("0.950 (95% CI 0.886-1.000)", "92.11% (95% CI: 77.52-97.94%)", "[0.75, 0.90]"); lists of values for
  several cohorts ("0.911 ... and 0.948 ... for training cohort and external validation cohort,
  respectively"); the cohort a value belongs to (the cohort phrase that closes its clause, else the one
  that opens it); the model (the nearest preceding model phrase or acronym); cohort sizes
  ("89 patients ... training cohort", "a training cohort of 516 patients", "(n = 150)");
* **tables** (tab-separated rows): a header names the metrics (and the cohorts, with their n) of the
  columns; each row's value groups ("0.936 (0.874-0.999)", "95.51 (85/89)", a bare CI column) are
  matched to the header's columns in order, and a row whose groups do not match is skipped rather than
  guessed; rows "A vs. B" with SE, CI and P are model comparisons; rows "OR [lo, hi]  P" odds ratios;
  rows of counts "33 (45.2)" under group columns "(N = 73)" Table-1 cells.

Everything is drafted for a reviewer to check: cohorts whose size the text does not state get
``n: null`` (the checks that need it skip them), and a value whose cohort cannot be told is put in the
cohort ``unknown``.

Beyond this core, :data:`RULES` holds patterns added for layouts met in particular papers, each
tagged with the paper that motivated it, so that the extraction can be measured leave-one-paper-out
(``benchmarks/bench_audit_text.py``): a paper is measured without the rules its own text motivated.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["Extraction", "extract", "extract_file", "to_spec", "audit_text", "write_draft", "RULES", "METRICS"]

# --------------------------------------------------------------------------- vocabulary
_METRIC_PATTERNS = {
    "AUC": r"AUROCs?|AUCs?|area under (?:the )?(?:receiver[- ]operating[- ]characteristics? |ROC )?curves?"
    r"(?: \(AUCs?\))?|C[- ]statistics?",
    "C-index": r"C[- ]index|concordance index|Harrell'?s C",
    "SEN": r"sensitivit(?:y|ies)|SEN|SENS|recall|true positive rates?|TPR",
    "SPE": r"specificit(?:y|ies)|SPE|SPEC|true negative rates?|TNR",
    "BCA": r"BCA|balanced (?:classification )?accurac(?:y|ies)",
    "ACC": r"accurac(?:y|ies)|ACC",
    "PPV": r"PPVs?|positive predictive values?|precision(?![- ]recall)",
    "NPV": r"NPVs?|negative predictive values?",
    "ER": r"error rates?|ER",
}
METRICS = tuple(_METRIC_PATTERNS)
_ACRONYMS = {
    "SEN",
    "SENS",
    "SPE",
    "SPEC",
    "ACC",
    "PPV",
    "PPVs",
    "NPV",
    "NPVs",
    "BCA",
    "ER",
    "TPR",
    "TNR",
    "AUC",
    "AUCs",
    "AUROC",
    "AUROCs",
}
_METRIC_RE = re.compile(
    "(?<![A-Za-z])(?:"
    + "|".join(f"(?P<{k.replace('-', '_')}>{v})" for k, v in _METRIC_PATTERNS.items())
    + ")(?![A-Za-z])",
    re.IGNORECASE,
)
_PROPORTIONS = {"SEN", "SPE", "ACC", "PPV", "NPV", "BCA", "ER"}

_NUM = r"[-−]?\d+(?:\.\d+)?"
_CI_LEVEL = r"(?:95\s?%\s*(?:CI|confidence intervals?)(?:\s*\[CI\])?s?\s*[:,]?\s*)"
_RANGE = rf"({_NUM})\s*%?\s*(?:-|–|—|to|,)\s*({_NUM})\s*%?"
_CI_AFTER = re.compile(rf"\s*(?:[\(\[]\s*{_CI_LEVEL}?{_RANGE}\s*[\)\]]|,?\s*{_CI_LEVEL}{_RANGE})")
_VALUE = re.compile(rf"(?<![\w.])({_NUM})(\s?%)?(?!\w|\.\d)")
_P_TOKEN = re.compile(r"^\s*(?:[Pp]\s*)?([<>≤≥=]\s*)?(0?\.\d+|1(?:\.0+)?)\s*$")

_COHORT_RE = re.compile(
    r"\b(?:(?P<q>external(?:ly)?|internal|independent|temporal|prospective)\s+)?"
    r"(?P<k>training|train|development|derivation|primary|validation|validating|test(?:ing)?)"
    r"(?:\s+and\s+(?:external\s+|internal\s+)?(?:validation|test(?:ing)?))?"
    r"\s+(?P<w>cohorts?|sets?|groups?|datasets?|data sets?|samples?)\b"
    r"|\b(?P<c>cohort\s+(?P<cn>\d))\b",
    re.IGNORECASE,
)
_SIZE_AFTER = re.compile(r"^\s*[\(\[]\s*[nN]\s*=\s*(\d+)")
_OF_SIZE = re.compile(
    r"^\s*(?:of|with|included|comprised|comprising|consisted of|including)\s+(\d+)\s+"
    r"(?:patients|cases|subjects|participants|lesions|tumou?rs)"
)
_N_PATIENTS = re.compile(r"(?<![\w.])(\d+)\s+(?:patients|cases|subjects|participants|lesions|tumou?rs)\b")
_TOTAL = re.compile(
    r"\b(?:a total of|total(?:ly)?|overall|all)\s+(\d+)\s+(?:patients|cases|subjects|participants)", re.IGNORECASE
)
_WITH_WITHOUT = re.compile(
    r"(?<![\d.])(\d+)\s+(?:patients\s+|cases\s+)?with\b(?!out)[^;.]{0,60}?(?:,|\band\b)\s*"
    r"(\d+)\s+(?:patients\s+|cases\s+)?without\b"
)
_NEG_WORDS = re.compile(r"^\s*(?:non|no\b|without|benign|negative|neg\b|absent|lipoma|control)", re.IGNORECASE)
_MODEL_RE = re.compile(
    r"((?:[A-Za-z][\w+\-]*\s+){0,2}[A-Za-z][\w+\-]*\s+(?:model|signature|nomogram|classifier|score))\b"
    r"|\b([A-Z][A-Za-z]*[A-Z][\w+\-]*(?:\s+[A-Z]{2,}[\w+\-]*)?)\b"
)
_NOT_MODELS = _ACRONYMS | {
    "CI",
    "ROC",
    "MRI",
    "CT",
    "US",
    "DCA",
    "ICC",
    "SVM",
    "LASSO",
    "OR",
    "HR",
    "SD",
    "IQR",
    "DL",
    "TC",
    "EVC",
    "PET",
    "FISH",
    "MDM2",
    "WHO",
    "AJCC",
    "FNCLCC",
    "IBSI",
    "DeLong",
    "The",
    "This",
    "These",
    "Our",
    "Both",
    "All",
    "Each",
    "Conclusion",
    "Results",
}
_GREEK = str.maketrans(
    {
        "Ρ": "P",
        "Μ": "M",
        "Α": "A",
        "Β": "B",
        "Ε": "E",
        "Ν": "N",
        "Ο": "O",
        "Τ": "T",
        "−": "-",
        "‒": "-",
        "\u2009": " ",
        "\xa0": " ",
    }
)
_SECTIONS = (
    "abstract",
    "introduction",
    "methods",
    "materials and methods",
    "results",
    "discussion",
    "conclusion",
    "conclusions",
)


def _cohort_label(m: re.Match) -> str:
    """A canonical cohort name for a cohort phrase ("External validation set" -> "external_validation")."""
    if m.group("c"):
        return f"cohort_{m.group('cn')}"
    k = m.group("k").lower()
    k = {
        "train": "training",
        "development": "training",
        "derivation": "training",
        "primary": "training",
        "validating": "validation",
        "testing": "test",
    }.get(k, k)
    q = (m.group("q") or "").lower().replace("externally", "external")
    if " and " in m.group(0).lower() and k == "training":
        return "training"
    return f"{q}_{k}" if q and k != "training" else k


# --------------------------------------------------------------------------- data
@dataclass
class Item:
    """One extracted number (or row of numbers) with where it came from."""

    kind: str  # reported | comparison | table1 | ratio
    metric: str
    value: float | None
    decimals: int | None
    cohort: str | None
    model: str
    line: int
    quote: str
    section: str
    ci: tuple | None = None
    table: str | None = None
    extra: dict = field(default_factory=dict)
    rule: str = "core"


@dataclass
class Extraction:
    items: list[Item]
    cohorts: dict[str, dict]  # label -> {n, n_positive, n_negative, line, quote}
    source: str = ""


@dataclass
class _Line:
    no: int
    text: str
    section: str
    is_table: bool


# --------------------------------------------------------------------------- rules (tagged by paper)
@dataclass
class Rule:
    name: str
    motivated_by: str  # the paper whose text motivated it (a chapter id)
    # normalize | sentence | value_filter | cohort_mention | header_cohort | table_text | row_context | table_row |
    # tokens | cohort | finalize
    hook: str
    fn: Callable
    why: str


RULES: list[Rule] = []
_ACTIVE: contextvars.ContextVar[tuple] = contextvars.ContextVar("audit_text_rules", default=())


def _hooked(hook: str) -> list[Rule]:
    """The active rules (of this extraction) for one hook."""
    return [r for r in _ACTIVE.get() if r.hook == hook]


def rule(name: str, motivated_by: str, hook: str, why: str):
    def deco(fn):
        RULES.append(Rule(name, motivated_by, hook, fn, why))
        return fn

    return deco


# --------------------------------------------------------------------------- numbers
def _to_float(s: str) -> float:
    return float(s.replace("−", "-"))


def _decimals_of(s: str) -> int:
    s = s.strip().lstrip("-−")
    return len(s.split(".")[1]) if "." in s else 0


def _scale(metric: str, raw: str, pct: bool, ci: tuple | None) -> tuple[float, int, tuple | None] | None:
    """A printed value as a fraction with its printed decimals (percentages / 100); None if not a proportion."""
    v, d = _to_float(raw), _decimals_of(raw)
    cvals = [_to_float(c) for c in ci] if ci else None
    as_pct = pct or v > 1.0 or (cvals is not None and max(cvals) > 1.0)
    if as_pct:
        v, d = v / 100.0, d + 2
        cvals = [c / 100.0 for c in cvals] if cvals else None
    if not 0.0 <= v <= 1.0 or (cvals and not (-0.001 <= cvals[0] <= cvals[1] <= 1.001)):
        return None
    if metric in ("AUC", "C-index") and as_pct and not pct:
        return None  # an AUC printed > 1 is no AUC
    return v, d, (tuple(cvals) if cvals else None)


# --------------------------------------------------------------------------- lines and sentences
def _lines(text: str) -> list[_Line]:
    out, section = [], "?"
    for i, raw in enumerate(text.translate(_GREEK).splitlines(), 1):
        t = raw.strip()
        head = re.sub(r"[#*\d.\s]+", " ", t).strip().rstrip(":").lower()
        if head in _SECTIONS and len(t) < 40:
            section = head.title()
        elif re.match(
            r"^\**(background|results|conclusions?|methods|purpose|objectives?)\s*:?\**\s*:", t, re.IGNORECASE
        ) and section in ("?", "Abstract"):
            section = "Abstract"
        out.append(_Line(i, raw.translate(_GREEK), section, "\t" in raw))
    return out


_SENT_END = re.compile(r"(?<=[.;!?])\s+(?=[A-Z(])")


def _sentences(line: _Line) -> list[str]:
    return [s for s in _SENT_END.split(line.text) if s.strip()]


def _clean_table_row(s: str) -> str:
    """Glue numbers that PDF-to-text split across cells ("-0.017-0\\t.022" -> "-0.017-0.022")."""
    s = re.sub(r"(\d)\s*\t\s*(\.\d)", r"\1\2", s)
    s = re.sub(r"(\d\.)\s*\t\s*(\d)", r"\1\2", s)
    return s


# --------------------------------------------------------------------------- sentence extraction
def _metric_of(m: re.Match) -> str:
    name = next(k for k, v in m.groupdict().items() if v is not None).replace("_", "-")
    return name


def _metric_mentions(s: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _METRIC_RE.finditer(s):
        word = m.group(0)
        if word.upper() == word and word.rstrip("s") not in {a.rstrip("s") for a in _ACRONYMS} and len(word) < 6:
            continue
        if word in ("ER", "ACC", "SEN", "SPE") and not re.search(r"[\s(:=,]", s[m.end() : m.end() + 1] or " "):
            continue
        if re.fullmatch(r"[A-Za-z]+", word) and word.isupper() is False and word.lower() in ("er", "acc", "sen", "spe"):
            continue
        out.append((m.start(), m.end(), _metric_of(m)))
    return out


def _values_after(s: str, start: int, stop: int) -> list[tuple[int, str, bool, tuple | None, str]]:
    """The value(s) a metric mention states: the first number after it (skipping a "95%" CI level), its CI,
    and any further values joined by "and" / "versus" / "," (a list for several cohorts)."""
    out: list = []
    pos = start
    while len(out) < 4:
        m = _VALUE.search(s, pos, stop)
        if m is None:
            break
        gap = s[pos : m.start()]
        if m.group(1) == "95" and re.match(r"\s?%\s*(?:CI|confidence)", s[m.end(1) : m.end(1) + 16], re.IGNORECASE):
            pos = m.end()
            continue
        if not out and (len(gap) > 45 or ";" in gap):
            break
        if out and not re.fullmatch(
            r"[\s,]*(?:and|versus|vs\.?|to|respectively)?[\s,]*(?:the\s+)?", gap, re.IGNORECASE
        ):
            break
        ci_m = _CI_AFTER.match(s, m.end())
        ci = (ci_m.group(1) or ci_m.group(3), ci_m.group(2) or ci_m.group(4)) if ci_m else None
        end = ci_m.end() if ci_m else m.end()
        out.append((m.start(), m.group(1), bool(m.group(2)), ci, s[m.start() : end]))
        pos = end
    return out


_PAIR = re.compile(r"\s+and\s+((?:external|internal)\s+)?(validation|test(?:ing)?)", re.IGNORECASE)


def _cohort_mentions(s: str) -> list[tuple[int, int, str, bool]]:
    """(start, end, label, closes_a_clause) of every cohort phrase in a sentence; "training and external
    validation sets" is two cohorts."""
    out = []
    for m in _COHORT_RE.finditer(s):
        before = s[max(0, m.start() - 12) : m.start()].lower()
        after = s[m.end() : m.end() + 3]
        closing = bool(re.search(r"\b(?:in|for|on|of|within)\s+(?:the\s+)?$", before)) and (
            not after.strip() or after.strip()[0] in ",.;)" or after.startswith(" and") or after.startswith(" (")
        )
        pair = _PAIR.search(m.group(0)) if not m.group("c") else None
        out.append((m.start(), m.end(), _cohort_label(m), closing))
        if pair:
            q, k = (pair.group(1) or "").strip().lower(), pair.group(2).lower().replace("testing", "test")
            out.append((m.start() + pair.start(), m.end(), f"{q}_{k}" if q else k, closing))
    for r in _hooked("cohort_mention"):
        out += [x for x in r.fn(s) if not any(x[0] < o[1] and o[0] < x[1] for o in out)]
    return sorted(out)


def _assign_cohort(pos: int, mentions) -> str | None:
    """The cohort of a value at ``pos``: the first later mention that closes the clause the value is in,
    else the nearest earlier mention."""
    later = [m for m in mentions if m[0] > pos]
    earlier = [m for m in mentions if m[1] <= pos]
    if later and later[0][3]:
        return later[0][2]
    if earlier:
        return earlier[-1][2]
    return later[0][2] if later else None


def _model_before(s: str, pos: int, fallback: str) -> str:
    best = None
    for m in _MODEL_RE.finditer(s[:pos]):
        name = (m.group(1) or m.group(2) or "").strip()
        name = re.sub(r"^(?:(?:the|a|an|our|this|that|these|and|of|with|in|by|for)\s+)+", "", name, flags=re.IGNORECASE)
        first = re.split(r"[\s\-]", name)[0] if name else ""
        if not name or first in _NOT_MODELS or name in _NOT_MODELS or _METRIC_RE.fullmatch(name):
            continue
        best = name
    return best or fallback


def _sentence_items(line: _Line, s: str, ctx: dict, rules: list[Rule]) -> list[Item]:
    items: list[Item] = []
    mentions = _metric_mentions(s)
    cohorts = _cohort_mentions(s)
    respectively = "respectively" in s.lower()
    for i, (a, b, metric) in enumerate(mentions):
        stop = mentions[i + 1][0] if i + 1 < len(mentions) else len(s)
        vals = _values_after(s, b, stop)
        labels = [c[2] for c in cohorts]
        distinct = list(dict.fromkeys(labels))
        vals = [v for v in vals if not any(r.fn(s, v[0], v[1], v[2]) for r in rules if r.hook == "value_filter")]
        for j, (pos, raw, pct, ci, _quote) in enumerate(vals):
            scaled = _scale(metric, raw, pct, ci)
            if scaled is None:
                continue
            v, d, civ = scaled
            if respectively and len(vals) > 1 and len(distinct) >= len(vals):
                cohort = distinct[j]
            else:
                cohort = _assign_cohort(pos, cohorts)
            model = _model_before(s, a, ctx.get("model", "model"))
            items.append(
                Item(
                    "reported",
                    metric,
                    v,
                    d,
                    cohort or ctx.get("cohort"),
                    model,
                    line.no,
                    s.strip()[:300],
                    line.section,
                    civ,
                )
            )
    if mentions:
        ctx["model"] = _model_before(s, len(s), ctx.get("model", "model"))
    for r in rules:
        if r.hook == "sentence":
            items += [Item(**{**it.__dict__, "rule": r.name}) for it in r.fn(line, s, ctx)]
    return items


def _sentence_cohorts(line: _Line, s: str, cohorts: dict) -> None:
    """Cohort sizes stated in a sentence."""
    ments = _cohort_mentions(s)
    for _a, b, label, _ in ments:
        m = _SIZE_AFTER.match(s[b:]) or _OF_SIZE.match(s[b:])
        if m:
            _set_n(cohorts, label, int(m.group(1)), line, s)
    for m in _N_PATIENTS.finditer(s):
        # "89 patients from one institution were assigned to the training cohort": the cohort named in the
        # same clause after the count
        clause_end = min([x for x in (s.find(",", m.end()), s.find(";", m.end()), len(s)) if x >= 0])
        after = [c for c in ments if m.end() <= c[0] < clause_end]
        before = [c for c in ments if c[1] <= m.start() and s[c[1] : m.start()].strip() in ("of", "with", "(n =")]
        if after and not re.search(r"\d", s[m.end() : after[0][0]]):
            _set_n(cohorts, after[0][2], int(m.group(1)), line, s)
        elif before:
            _set_n(cohorts, before[-1][2], int(m.group(1)), line, s)
    t = _TOTAL.search(s)
    if t:
        _set_n(cohorts, "all", int(t.group(1)), line, s)
    w = _WITH_WITHOUT.search(s)
    if w and ments:
        label = min(ments, key=lambda c: abs(c[0] - w.start()))[2]
        pos, neg = int(w.group(1)), int(w.group(2))
        _set_n(cohorts, label, pos + neg, line, s)
        if cohorts[label].get("n") == pos + neg:
            _set_n(cohorts, label, pos, line, s, "n_positive")


def _set_n(cohorts: dict, label: str, n: int, line: _Line, quote: str, key: str = "n") -> None:
    c = cohorts.setdefault(label, {})
    if c.get(key) is None and n > 0:
        c[key] = n
        c.setdefault("where", {"line": line.no, "quote": quote.strip()[:200]})


# --------------------------------------------------------------------------- tables
_K_PCT = re.compile(r"(?<![\w.])(\d+)\s*\(\s*(\d+(?:\.\d+)?)\s*%?\s*\)")


@dataclass
class _Tok:
    kind: str  # value | range | p
    value: float | None = None
    raw: str = ""
    ci: tuple | None = None
    count: tuple | None = None


def _tokens(cells: list[str]) -> list[_Tok]:
    """Value groups of a table row, in order: "0.936 (0.874-0.999)", "95.51 (85/89)", a bare range, "< 0.001"."""
    out = []
    for cell in cells:
        c = re.sub(r"\b95\s?%\s*(?=CI|confidence)", "", cell, flags=re.IGNORECASE).strip()  # the CI's level
        if not c or c in ("-", "–", "NA", "N/A", "Reference", "Ref", "ref"):
            if c:
                out.append(_Tok("gap", raw=c))
            continue
        pm = re.fullmatch(r"[Pp]?\s*([<>≤≥])\s*(0?\.\d+)", c)
        if pm:
            out.append(_Tok("p", float(pm.group(2)), c))
            continue
        for m in re.finditer(
            rf"({_NUM}\.\d*|{_NUM})\s*[-–—]\s*(\d*\.\d+)(?![\d(\[])"
            rf"|({_NUM})\s*(%?)\s*(?:[\(\[]\s*(?:(\d+)\s*/\s*(\d+)|{_RANGE})\s*[\)\]])?"
            rf"|[\(\[]\s*{_RANGE}\s*[\)\]]|([<>≤≥])\s*(0?\.\d+)",
            c,
        ):
            if m.group(1) is not None:  # a bare range "0.905-0.974" (a CI column)
                out.append(_Tok("range", raw=m.group(0), ci=(m.group(1), m.group(2))))
                continue
            if m.group(12):
                out.append(_Tok("p", float(m.group(13)), m.group(0)))
                continue
            if m.group(3) is None:
                out.append(_Tok("range", raw=m.group(0), ci=(m.group(9), m.group(10))))
                continue
            m_groups = (m.group(3), m.group(4), m.group(5), m.group(6), m.group(7), m.group(8))
            num, pct, k, n, lo, hi = m_groups
            count = (int(k), int(n)) if k else None
            ci = (lo, hi) if lo else None
            out.append(_Tok("value", _to_float(num), num + (pct or ""), ci, count))
    # a bare range right after a value is that value's CI (a separate "95% CI" column)
    merged: list[_Tok] = []
    for t in out:
        if t.kind == "range" and merged and merged[-1].kind == "value" and merged[-1].ci is None:
            merged[-1].ci = t.ci
        else:
            merged.append(t)
    return merged


def _label_cells(cells: list[str]) -> tuple[list[str], list[str]]:
    """Leading text cells (labels) and the rest."""
    i = 0
    while i < len(cells) and (not cells[i].strip() or not re.match(r"^\s*[-−<>≤≥(\[]?\s*\d", cells[i])):
        if cells[i].strip() in ("-", "NA"):
            break
        i += 1
    return [c.strip() for c in cells[:i] if c.strip()], cells[i:]


def _header_slots(header: str) -> tuple[list[str], list[tuple[str, int | None]]]:
    """Metrics (in column order) and cohorts (with their n) a table header names."""
    metrics = [
        _metric_of(m)
        for m in _METRIC_RE.finditer(header)
        if not (m.group(0).isupper() and m.group(0).rstrip("s") not in {a.rstrip("s") for a in _ACRONYMS})
    ]
    dedup = [m for i, m in enumerate(metrics) if i == 0 or m != metrics[i - 1]]
    found = []
    for m in _COHORT_RE.finditer(header):
        size = re.match(r"\s*[\(\[]?\s*[nN]\s*=\s*(\d+)", header[m.end() :])
        found.append((m.start(), _cohort_label(m), int(size.group(1)) if size else None))
    for r in _hooked("header_cohort"):
        found += [x for x in r.fn(header) if all(x[0] != f[0] for f in found)]
    return dedup, [(lab, n) for _, lab, n in sorted(found)]


def _table_caption(lines: list[_Line], i0: int, i1: int) -> str | None:
    for j in list(range(i0 - 1, max(-1, i0 - 6), -1)) + list(range(i1 + 1, min(len(lines), i1 + 8))):
        m = re.match(r"^\W*(table\s*\d+)", lines[j].text.strip(), re.IGNORECASE)
        if m:
            return m.group(1).title().replace("  ", " ")
    return None


def _table_items(lines: list[_Line], block: list[_Line], cohorts: dict, rules: list[Rule]) -> list[Item]:
    caption = _table_caption(lines, lines.index(block[0]), lines.index(block[-1]))
    items: list[Item] = []
    state = {
        "cohort": None,
        "mode": None,
        "metrics": [],
        "cohorts": [],
        "groups": [],
        "char": None,
        "cohort_sizes": cohorts,
    }
    for ln in block:
        text = _clean_table_row(ln.text)
        for r in _hooked("table_text"):
            text = r.fn(text)
        cells = text.split("\t")
        labels, rest = _label_cells(cells)
        slots = _tokens(rest)
        for r in rules:
            if r.hook == "tokens":
                slots = r.fn(slots)
        toks = [t for t in slots if t.kind != "gap"]
        has_k_pct = bool(_K_PCT.search(" ".join(rest)))
        if not [t for t in toks if t.kind in ("value", "range")] or (not rest and labels):
            # a header (or a row-group label such as "Cohort 2: External validation")
            new_metrics, new_cohorts = _header_slots(text)
            if len(new_metrics) >= 2 or re.search(r"(?i:standard error|odds ratio)|\bSE\b|\bOR\b|\bHR\b", text):
                state.update(
                    metrics=new_metrics,
                    cohorts=new_cohorts or state["cohorts"],
                    mode=_mode(text, new_metrics),
                    header_text=text,
                )
            elif new_cohorts and not new_metrics:
                if all(c[1] is None for c in new_cohorts) and len(new_cohorts) == 1 and state["metrics"]:
                    state["cohort"] = new_cohorts[0][0]  # a row-group label ("Cohort 3: External ...")
                    state["cohorts"] = []
                else:
                    state["cohorts"] = new_cohorts
                    for lab, n in new_cohorts:
                        if n:
                            _set_n(cohorts, lab, n, ln, text)
            groups = _group_columns(text)
            if groups:
                state["groups"] = groups
                _group_sizes(state, cohorts, ln, text)
            if labels and all(t.kind == "p" for t in toks) and not new_cohorts and not new_metrics:
                state["char"] = re.sub(
                    r"\s*[\(,]\s*(?:n|no\.)\s*[,(]?\s*%?\s*\)?\s*$", "", labels[0], flags=re.IGNORECASE
                )
            continue
        for r in _hooked("row_context"):
            r.fn(ln, labels, rest, state, caption)
        for r in rules:
            if r.hook == "table_row":
                got = r.fn(ln, labels, rest, state, caption)
                if got is not None:
                    items += [Item(**{**it.__dict__, "rule": r.name}) for it in got]
                    break
        else:
            items += _row_items(ln, text, labels, rest, toks, has_k_pct, state, caption, slots)
    return items


def _mode(header: str, metrics: list[str]) -> str:
    if re.search(r"standard error|\bSE\b", header, re.IGNORECASE):
        return "comparison"
    if re.search(r"odds ratio|\bOR\b|\bHR\b", header) and len(metrics) < 2:
        return "ratio"
    return "performance" if len(metrics) >= 2 else "table1"


_GROUP_COL = re.compile(r"([A-Za-z][\w\- ,/]*?)\s*[\(\[]\s*[nN]\s*=\s*(\d+)\s*[\)\]]")


def _group_columns(text: str) -> list[tuple[str, int]]:
    return [
        (m.group(1).strip(), int(m.group(2))) for m in _GROUP_COL.finditer(text) if not _COHORT_RE.search(m.group(1))
    ]


def _group_sizes(state: dict, cohorts: dict, ln: _Line, text: str) -> None:
    """Subgroup columns under cohort columns ("non-MDM (N=73)  MDM (N=48)" under "Training Cohort (n = 121)"):
    the class counts of each cohort (the subgroups whose sizes add up to its n)."""
    groups, parents = state["groups"], [c for c in state["cohorts"] if c[1]]
    out, gi = [], 0
    for lab, n in parents:
        acc = []
        while gi < len(groups) and sum(g[1] for g in acc) < n:
            acc.append(groups[gi])
            gi += 1
        if len(acc) == 2 and sum(g[1] for g in acc) == n:
            neg = [g for g in acc if _NEG_WORDS.match(g[0])]
            pos = [g for g in acc if not _NEG_WORDS.match(g[0])]
            if len(neg) == 1 and len(pos) == 1:
                _set_n(cohorts, lab, pos[0][1], ln, text, "n_positive")
        out += [(lab, g) for g in acc]
    state["group_cohort"] = out


def _row_items(ln, text, labels, rest, toks, has_k_pct, state, caption, slots) -> list[Item]:
    label = labels[-1] if labels else "?"
    if labels and len(labels) > 1:
        c = _COHORT_RE.search(labels[0])
        if c:
            state["cohort"] = _cohort_label(c)
    vs = re.match(r"(.+?)\s+vs\.?\s+(.+)", label)
    if vs and state["mode"] in ("comparison", "performance", None):
        return _comparison_items(ln, text, vs, toks, state, caption)
    if state["mode"] == "performance":
        return _performance_items(ln, text, label, [t for t in slots if t.kind != "p"], state, caption)
    if state["mode"] == "ratio":
        return _ratio_items(ln, text, label, toks, state, caption)
    if has_k_pct:
        return _table1_items(ln, text, label, rest, state, caption)
    if labels and state["mode"] not in ("performance", "ratio", "comparison"):
        state["char"] = re.sub(r"\s*[\(,]\s*(?:n|no\.)\s*[,(]?\s*%?\s*\)?\s*$", "", label, flags=re.IGNORECASE)
    return []


def _performance_items(ln, text, label, toks, state, caption) -> list[Item]:
    metrics, cohorts = state["metrics"], state["cohorts"]
    vals = [t for t in toks if t.kind in ("value", "gap")]  # an "NA" / "-" cell keeps its column
    k = len(cohorts) or 1
    per = len(metrics) // k if len(metrics) % k == 0 and len(metrics) >= k else len(metrics)
    if not metrics or len(vals) not in (len(metrics),):
        # a "P" column after the metrics (vs a reference model) is allowed
        if not (len(vals) == len(metrics) + 1 and re.search(r"\bP\b", state.get("header_text", ""))):
            return []
        vals = vals[: len(metrics)]
    out = []
    for j, (metric, t) in enumerate(zip(metrics, vals)):
        cohort = cohorts[j // per][0] if cohorts and per and j // per < len(cohorts) else state["cohort"]
        if t.kind == "gap":
            continue
        scaled = _scale(metric, t.raw.rstrip("%"), t.raw.endswith("%"), t.ci)
        if scaled is None:
            continue
        v, d, ci = scaled
        extra = {"k": t.count[0], "n": t.count[1]} if t.count else {}
        out.append(
            Item("reported", metric, v, d, cohort, label, ln.no, text.strip()[:300], ln.section, ci, caption, extra)
        )
    return out


def _p_value(t: _Tok) -> str | float:
    return t.raw.replace(" ", "") if t.raw.strip()[:1] in "<>≤≥" else float(t.value)


def _comparison_items(ln, text, vs, toks, state, caption) -> list[Item]:
    """Model comparisons: per cohort (in the header's order) an SE or a difference, a CI and a P."""
    cohorts = state["cohorts"] or [(state["cohort"], None)]
    has_se = bool(re.search(r"(?i:standard error)|\bSE\b", state.get("header_text") or ""))
    out, i = [], 0
    for lab, _ in cohorts:
        first = toks[i] if i < len(toks) else None
        se = diff = ci = p = None
        if first is not None and first.kind == "value":
            se, diff = (first.raw, None) if has_se else (None, first.raw)
            ci = first.ci
            i += 1
        if ci is None and i < len(toks) and toks[i].kind == "range":
            ci = toks[i].ci
            i += 1
        if i < len(toks) and toks[i].kind in ("value", "p") and toks[i].ci is None:
            p = _p_value(toks[i])
            i += 1
        if se is None and ci is None and p is None:
            break
        out.append(
            Item(
                "comparison",
                "DeLong",
                None,
                None,
                lab,
                vs.group(1).strip(),
                ln.no,
                text.strip()[:300],
                ln.section,
                tuple(ci) if ci else None,
                caption,
                {"model_b": vs.group(2).strip(), "se": se, "diff": diff, "p_value": p},
            )
        )
    return out


def _ratio_items(ln, text, label, toks, state, caption) -> list[Item]:
    """Odds-ratio rows: "OR [lo, hi]  P" per model column (univariate, multivariate)."""
    models = re.findall(
        r"(univariate|multivariate|multivariable|adjusted|crude)", state.get("header_text", "") or "", re.IGNORECASE
    ) or ["Univariate", "Multivariate"]
    out, i, mi = [], 0, 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "value" and t.ci:
            p = _p_value(toks[i + 1]) if i + 1 < len(toks) and toks[i + 1].kind in ("value", "p") else None
            v = _to_float(t.raw.rstrip("%"))
            out.append(
                Item(
                    "ratio",
                    "OR",
                    v,
                    _decimals_of(t.raw),
                    state["cohort"] or "training",
                    f"{models[min(mi, len(models) - 1)].capitalize()} logistic",
                    ln.no,
                    text.strip()[:300],
                    ln.section,
                    (_to_float(t.ci[0]), _to_float(t.ci[1])),
                    caption,
                    {"variable": label, "p_value": p},
                )
            )
            mi += 1
            i += 2 if p is not None else 1
        else:
            i += 1
    return out


def _table1_items(ln, text, label, rest, state, caption) -> list[Item]:
    """Counts with percentages under group columns: one PROP cell each."""
    cells = [m for m in _K_PCT.finditer("\t".join(rest))]
    cols = state.get("group_cohort") or [(c[0], (c[0], c[1])) for c in state["cohorts"]]
    if not cols or len(cells) != len(cols):
        return []
    out = []
    for (cohort, (grp, n)), m in zip(cols, cells):
        k, pct = int(m.group(1)), m.group(2)
        d = _decimals_of(pct) + 2
        group = grp if grp != cohort else None
        out.append(
            Item(
                "table1",
                "PROP",
                float(pct) / 100.0,
                d,
                cohort,
                "Patients",
                ln.no,
                text.strip()[:300],
                ln.section,
                None,
                caption,
                {"characteristic": state.get("char") or "?", "level": label, "k": k, "n": n, "group": group},
            )
        )
    return out


# --------------------------------------------------------------------------- the whole text
def _active(exclude: Iterable[str]) -> list[Rule]:
    ex = set(exclude)
    return [r for r in RULES if r.motivated_by not in ex]


def extract(text: str, exclude: Iterable[str] = (), source: str = "") -> Extraction:
    """Every extractable number of a paper's text. ``exclude``: papers whose rules are left out (the
    leave-one-paper-out measurement passes the measured paper)."""
    rules = _active(exclude)

    def run() -> Extraction:  # in a copied context: the rules' state never leaks between extractions
        _ACTIVE.set(tuple(rules))
        return _extract(text, rules, source)

    return contextvars.copy_context().run(run)


def _extract(text: str, rules: list[Rule], source: str) -> Extraction:
    for r in rules:
        if r.hook == "normalize":
            text = r.fn(text)
    lines = _lines(text)
    items: list[Item] = []
    cohorts: dict[str, dict] = {}
    ctx: dict = {"model": "model", "cohort": None}
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.is_table:
            j = i
            while j + 1 < len(lines) and (
                lines[j + 1].is_table
                or (j + 2 < len(lines) and lines[j + 2].is_table and _row_label_line(lines[j + 1].text))
            ):
                j += 1
            items += _table_items(lines, lines[i : j + 1], cohorts, rules)
            i = j + 1
            continue
        for s in _sentences(ln):
            _sentence_cohorts(ln, s, cohorts)
            for r in rules:
                if r.hook == "cohort":
                    r.fn(ln, s, cohorts)
            items += _sentence_items(ln, s, ctx, rules)
        i += 1
    ex = Extraction(items, cohorts, source)
    for r in rules:
        if r.hook == "finalize":
            ex = r.fn(ex)
    return ex


def _row_label_line(text: str) -> bool:
    """A short line between two table rows ("Sex (n, %)"): a row label the PDF lost its tabs from."""
    t = text.strip()
    return 0 < len(t) < 60 and not t.endswith(".") and not re.match(r"^\W*table\s*\d", t, re.IGNORECASE)


def extract_file(path: str | Path, exclude: Iterable[str] = ()) -> Extraction:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {path}: {exc}") from None
    return extract(text, exclude, source=str(path))


# --------------------------------------------------------------------------- the draft spec
def _fmt_num(v: float, d: int | None) -> str:
    return f"{v:.{d}f}" if d is not None else f"{v:g}"


def _canonical_models(items: list[Item]) -> dict[str, str]:
    """One spelling per model whatever its case ("clinical model" in a sentence, "Clinical model" in a table):
    the one a table uses, else the first."""
    out: dict[str, str] = {}
    for it in sorted(items, key=lambda i: i.table is None):
        for name in (it.model, it.extra.get("model_b")):
            if isinstance(name, str):
                out.setdefault(name.lower(), name)
    return out


def _compose(cohorts: dict) -> None:
    """A cohort whose size is the sum of two or more others' is ``composed_of`` them (the largest such set)."""
    import itertools

    sized = {c: v["n"] for c, v in cohorts.items() if v.get("n") and c != "unknown"}
    for whole, n in sorted(sized.items(), key=lambda kv: -kv[1]):
        others = [c for c, m in sized.items() if c != whole and m < n and "composed_of" not in cohorts[c]]
        for k in range(len(others), 1, -1):
            hit = next(
                (combo for combo in itertools.combinations(others, k) if sum(sized[c] for c in combo) == n), None
            )
            if hit:
                cohorts[whole]["composed_of"] = list(hit)
                break


def to_spec(ex: Extraction, name: str = "paper") -> dict:
    """The extraction as an audit spec (``specs/audit_schema.yaml``): every number quoted as printed (as a
    fraction), with the sentence or row it came from."""
    cohorts: dict[str, dict] = {}
    for lab, c in ex.cohorts.items():
        if c.get("n"):
            cohorts[lab] = {"n": int(c["n"])}
            if c.get("n_positive") is not None and c["n_positive"] < c["n"]:
                cohorts[lab]["n_positive"] = int(c["n_positive"])
            cohorts[lab]["where"] = f"line {c['where']['line']}: {c['where']['quote']}"
    used = {it.cohort or "unknown" for it in ex.items}
    for lab in sorted(used):
        cohorts.setdefault(lab, {"n": None, "description": "size not found in the text: fill in n"})
    _compose(cohorts)
    spec: dict = {
        "id": re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "paper",
        "title": f"draft extracted from {Path(ex.source).name if ex.source else name}",
        "source": ex.source,
        "cohorts": cohorts,
        "reported": [],
        "comparisons": [],
        "table1": [],
    }
    seen = set()
    canon = _canonical_models(ex.items)
    for it in ex.items:
        it.model = canon.get(it.model.lower(), it.model)
        if it.kind == "comparison":
            it.extra["model_b"] = canon.get(str(it.extra.get("model_b", "")).lower(), it.extra.get("model_b"))
    for n, it in enumerate(ex.items, 1):
        where = {"section": it.section, "line": it.line, "quote": it.quote}
        if it.table:
            where["table"] = it.table
        cohort = it.cohort or "unknown"
        if it.kind == "reported":
            key = (it.metric, it.model, cohort, it.value, it.line)
            if key in seen:
                continue
            seen.add(key)
            e = {
                "id": f"x{n:03d}",
                "model": it.model,
                "cohort": cohort,
                "metric": it.metric,
                "value": _fmt_num(it.value, it.decimals),
                "where": where,
            }
            if it.ci:
                e["ci"] = [_fmt_num(c, it.decimals) for c in it.ci]
            if it.extra.get("k") is not None and it.extra.get("n") is not None:
                e["denominators"] = {"k": it.extra["k"]}
            spec["reported"].append(e)
        elif it.kind == "ratio":
            e = {
                "id": f"x{n:03d}",
                "model": it.model,
                "cohort": cohort,
                "metric": it.metric,
                "variable": it.extra["variable"],
                "value": _fmt_num(it.value, it.decimals),
                "where": where,
            }
            if it.ci:
                e["ci"] = [_fmt_num(c, it.decimals) for c in it.ci]
            if it.extra.get("p_value") is not None:
                e["p_value"] = it.extra["p_value"]
            spec["reported"].append(e)
        elif it.kind == "comparison":
            c = {
                "id": f"x{n:03d}",
                "model_a": it.model,
                "model_b": it.extra["model_b"],
                "cohort": cohort,
                "test": "DeLong",
                "where": where,
            }
            if it.extra.get("se") is not None:
                c["se"] = it.extra["se"]
            if it.ci:
                c["ci"] = list(it.ci)
            if it.extra.get("p_value") is not None:
                c["p_value"] = it.extra["p_value"]
            spec["comparisons"].append(c)
        elif it.kind == "table1":
            row = {
                "id": f"x{n:03d}",
                "characteristic": it.extra["characteristic"],
                "level": it.extra["level"],
                "cohort": cohort,
                "k": it.extra["k"],
                "percent": _fmt_num(100 * it.value, max(0, it.decimals - 2)),
                "where": where,
            }
            if it.extra.get("group"):
                row["group"] = it.extra["group"]
                row["n"] = it.extra["n"]
            spec["table1"].append(row)
    for key in ("reported", "comparisons", "table1"):
        if not spec[key]:
            del spec[key]
    return spec


def audit_text(path: str | Path):
    """Extract a paper's numbers from its text and audit them: ``(findings, draft spec)``."""
    from .audit import Finding, audit_spec

    ex = extract_file(path)
    spec = to_spec(ex, Path(path).stem)
    if not spec.get("reported") and not spec.get("comparisons") and not spec.get("table1"):
        return [
            Finding(
                spec["id"],
                str(path),
                "spec",
                "warning",
                "no diagnostic-accuracy statement (AUC, sensitivity, ... with a value) was found in the text",
            )
        ], spec
    n = {k: len(spec.get(k, [])) for k in ("reported", "comparisons", "table1")}
    note = Finding(
        spec["id"],
        str(path),
        "spec",
        "info",
        f"Audited from an automatic extraction of the text ({n['reported']} numbers, {n['comparisons']} "
        f"comparisons, {n['table1']} Table-1 cells; models and cohorts guessed): check each finding's quote, "
        "or write the draft (--draft OUT.yaml), correct it and audit that.",
        {"source": str(path)},
    )
    return audit_spec(spec) + [note], spec


_DRAFT_HEAD = """\
# Draft audit spec extracted by `replicate audit {src} --draft` from the paper's plain text.
# Every number is quoted as printed (as a fraction) with the sentence or table row it came from
# (where.line, where.quote). Check each one against the paper: models and cohorts are guessed, a
# cohort with `n: null` needs its size, values in cohort `unknown` need their cohort. Then run
# `replicate audit THIS_FILE.yaml`. Schema: src/replicate/specs/audit_schema.yaml.
"""


def write_draft(spec: dict, path: str | Path) -> Path:
    from .io import atomic_write_text

    path = Path(path)
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110)
    atomic_write_text(path, _DRAFT_HEAD.format(src=Path(spec.get("source") or "PAPER.txt").name) + body)
    return path


# --------------------------------------------------------------------------- rules, by the paper that motivated them
@rule("strip_markup", "rls", "normalize", "HTML-like markup left by PDF-to-text (<i>N</i>, <sup>a</sup>)")
def _strip_markup(text: str) -> str:
    text = re.sub(r"<sup>[^<]{0,12}</sup>", "", text)
    return re.sub(r"</?(?:i|b|em|strong|sub|sup)>", "", text)


@rule(
    "glue_split_limit",
    "rls",
    "tokens",
    "a CI's upper limit split across two cells ('0.094-0.4' + '456'): a 'P value' above 1 after a range",
)
def _glue_split_limit(toks: list) -> list:
    out = []
    for t in toks:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == "range"
            and t.kind == "value"
            and t.value is not None
            and t.value > 1
            and t.ci is None
            and re.fullmatch(r"\d+", t.raw)
            and re.fullmatch(r"-?\d*\.\d", prev.ci[1])
        ):
            prev.ci = (prev.ci[0], prev.ci[1] + t.raw)
            prev.raw += t.raw
            continue
        out.append(t)
    return out


_RESP_GROUP = re.compile(rf"([\w+\-]+(?:\s+models?)?)\s*\(\s*({_NUM})\s+and\s+({_NUM}),?\s*respectively\s*\)")


@rule(
    "respectively_in_parentheses",
    "rls",
    "sentence",
    "'The AUCs of the training and external validation sets of the DLRN (0.939 and 0.822, respectively)'",
)
def _respectively_in_parentheses(line: _Line, s: str, ctx: dict) -> list[Item]:
    mentions = _metric_mentions(s)
    cohorts = list(dict.fromkeys(c[2] for c in _cohort_mentions(s)))
    out = []
    for m in _RESP_GROUP.finditer(s):
        before = [x for x in mentions if x[1] <= m.start()]
        if not before or len(cohorts) < 2:
            continue
        metric = before[-1][2]
        for raw, cohort in zip((m.group(2), m.group(3)), cohorts):
            scaled = _scale(metric, raw, False, None)
            if scaled:
                out.append(
                    Item(
                        "reported",
                        metric,
                        scaled[0],
                        scaled[1],
                        cohort,
                        m.group(1),
                        line.no,
                        s.strip()[:300],
                        line.section,
                    )
                )
    return out


@rule("no_citations", "rls", "value_filter", "reference numbers in brackets ('sensitivity of data ... [26, 27]')")
def _no_citations(s: str, pos: int, raw: str, pct: bool) -> bool:
    before = s[max(0, pos - 8) : pos]
    return "." not in raw and not pct and bool(re.search(r"\[(?:\d+\s*[,–-]\s*)*$", before))


@rule(
    "join_broken_paragraphs",
    "wdlps",
    "normalize",
    "a sentence broken over two lines (and a blank line) by the PDF's columns: 'the C-index of 0.996,' / 'accuracy of'",
)
def _join_broken_paragraphs(text: str) -> str:
    return re.sub(r"([a-z0-9,%)])[ \t]*\n(?:[ \t]*\n)?(?=[a-z(])", r"\1 ", text)


@rule(
    "unclosed_ci_before_versus",
    "wdlps",
    "normalize",
    "a CI whose ')' the paper forgot: 'AUC of 0.652 (95% CI 0.534-0.770 versus 0.504 (95% CI ...)'",
)
def _unclosed_ci(text: str) -> str:
    return re.sub(r"(\(95\s?%\s*CI[:,]?\s*\d+\.\d+\s*[-–]\s*\d+\.\d+)(\s+(?:versus|vs\.?)\s)", r"\1)\2", text)


@rule(
    "bare_validation_phrase",
    "wdlps",
    "cohort_mention",
    "'in external validation' (no cohort / set after it) names the external validation cohort",
)
def _bare_validation(s: str) -> list[tuple[int, int, str, bool]]:
    out = []
    for m in re.finditer(
        r"\b(?:in|for|on)\s+(?:the\s+)?(external|internal)\s+validation\b(?!\s+(?:cohort|set|group))", s, re.IGNORECASE
    ):
        after = s[m.end() : m.end() + 3]
        closing = not after.strip() or after.strip()[0] in ",.;)(" or after.startswith(" and")
        out.append((m.start(1), m.end(), f"{m.group(1).lower()}_validation", closing))
    return out


@rule(
    "pdf_table_fragments",
    "wdlps",
    "table_text",
    "table cells the PDF split and duplicated: '66.29 (59/89) 36.84 (22.29' + '36.84 (22.29-54.00)', and "
    "'70.00 65.22 (45.67-87.16) (52.71-76.02)': values first, then their CIs",
)
def _pdf_table_fragments(text: str) -> str:
    text = re.sub(r"(\d+\.\d+) \((\d+\.\d+)(?:[–-]\s*[\d.]*)?\s*\t\s*(?=\1 \(\2)", "\t", text)
    pat = re.compile(r"((?:\d+\.\d+\s+){1,5}\d+\.\d+)\s*[|]?\s*((?:\(\d+\.\d+\s*[–-]\s*\d+\.\d+\)\s*){2,6})")

    def interleave(m):
        vals = m.group(1).split()
        cis = re.findall(r"\([^)]*\)", m.group(2))
        if len(vals) != len(cis):
            return m.group(0)
        return "\t".join(f"{v} {c}" for v, c in zip(vals, cis)) + "\t"

    return pat.sub(interleave, text)


@rule(
    "pdf_repeated_cells",
    "wdlps",
    "tokens",
    "cells the PDF printed twice ('44.09 (85.41-99.32) 77.78 (...)' then '44.09 77.78 61.25 0.436 (...)')",
)
def _pdf_repeated_cells(toks: list) -> list:
    key = [(t.kind, t.raw, t.ci) for t in toks]
    i = 0
    while i < len(key):
        for n in (4, 3, 2, 1):
            if key[i : i + n] == key[i + n : i + 2 * n] and len(key[i : i + n]) == n:
                del toks[i : i + n], key[i : i + n]
                break
        else:
            i += 1
    return toks


@rule(
    "no_ranges_over_models",
    "wdlps",
    "value_filter",
    "'the AUC ranged from 0.921 to 0.995': a range over several models, not one model's AUC",
)
def _no_ranges(s: str, pos: int, raw: str, pct: bool) -> bool:
    return bool(re.search(r"rang(?:ed|ing)\s+(?:from\s+)?$", s[max(0, pos - 20) : pos])) or bool(
        re.search(r"rang(?:ed|ing)\s+(?:from\s+)?[\d.]+%?\s+to\s+$", s[max(0, pos - 40) : pos])
    )


@rule(
    "one_validation_cohort",
    "wdlps",
    "finalize",
    "'validation cohort' (a table header) and 'external validation' (the text) for the same single validation "
    "cohort: merged when only one of them has a size",
)
def _one_validation_cohort(ex: Extraction) -> Extraction:
    names = [
        c for c in ("validation", "external_validation") if c in ex.cohorts or any(i.cohort == c for i in ex.items)
    ]
    others = [c for c in ex.cohorts if "validation" in c and c not in names] + [
        i.cohort for i in ex.items if i.cohort and "validation" in i.cohort and i.cohort not in names
    ]
    if len(names) != 2 or others:
        return ex
    sized = [c for c in names if (ex.cohorts.get(c) or {}).get("n")]
    if len(sized) != 1:
        return ex
    keep, drop = sized[0], next(c for c in names if c != sized[0])
    for it in ex.items:
        if it.cohort == drop:
            it.cohort = keep
    extra = ex.cohorts.pop(drop, {}) or {}
    for k, v in extra.items():
        ex.cohorts[keep].setdefault(k, v)
    return ex


@rule("total_column", "alt", "header_cohort", "a 'Total' column of a characteristics table: all the cohorts together")
def _total_column(header: str) -> list[tuple[int, str, int | None]]:
    m = re.search(r"(?:^|\t)\s*(Total|Overall|All patients)\s*(?:\t|$)", header)
    return [(m.start(1), "total", None)] if m else []


@rule("column_sizes_row", "alt", "table_row", "'Number of patients, N  116  150  208  86  444': the columns' sizes")
def _column_sizes_row(ln: _Line, labels: list, rest: list, state: dict, caption) -> list | None:
    if not labels or not re.match(
        r"^(?:number of patients|no\.? of patients|patients|n)\b[, ]*n?$", labels[0], re.IGNORECASE
    ):
        return None
    ns = [int(x) for x in re.findall(r"(?<![\d.])(\d+)(?![\d.])", "\t".join(rest))]
    if len(ns) != len(state["cohorts"]):
        return None
    state["cohorts"] = [(lab, n) for (lab, _), n in zip(state["cohorts"], ns)]
    for lab, n in state["cohorts"]:
        _set_n(state["cohort_sizes"], lab, n, ln, ln.text)
    return []


@rule(
    "subset_is_not_the_cohort",
    "alt",
    "finalize",
    "'in a subset of the validation cohorts (n = 35)': the size of a subset, not of the cohort",
)
def _subset_sizes(ex: Extraction) -> Extraction:
    for _lab, c in ex.cohorts.items():
        q = (c.get("where") or {}).get("quote", "")
        if c.get("n") and re.search(rf"subset of (?:the )?[\w ]*\(n\s*=\s*{c['n']}\)", q):
            c.pop("n")
    return ex


@rule(
    "p_column_vs_reference",
    "alt",
    "table_row",
    "a performance table's last column 'P-value' compares each row with the group's reference row (the first, or "
    "the one marked 'Reference'): a comparison with only a P",
)
def _p_column_vs_reference(ln: _Line, labels: list, rest: list, state: dict, caption) -> list | None:
    if state["mode"] != "performance" or not labels or not re.search(r"\bP\b", state.get("header_text") or ""):
        return None
    raw = _tokens(rest)
    for r in _hooked("tokens"):
        raw = r.fn(raw)
    slots = [t for t in raw if t.kind in ("value", "p", "gap")]
    n = len(state["metrics"])
    text = _clean_table_row(ln.text)
    if state.get("ref_group") != state["cohort"]:
        state.update(reference=None, ref_group=state["cohort"])
    is_ref = any(t.kind == "gap" and t.raw.lower().startswith("ref") for t in raw) or (
        len(slots) == n and state.get("reference") is None
    )
    items = _performance_items(ln, text, labels[-1], [t for t in slots[:n] if t.kind != "p"], state, caption)
    if is_ref:
        state["reference"] = labels[-1]
    elif len(slots) == n + 1 and slots[-1].kind in ("value", "p") and state.get("reference") and items:
        vals = slots
        items.append(
            Item(
                "comparison",
                "DeLong",
                None,
                None,
                items[0].cohort,
                labels[-1],
                ln.no,
                text.strip()[:300],
                ln.section,
                None,
                caption,
                {"model_b": state["reference"], "se": None, "diff": None, "p_value": _p_value(vals[-1])},
            )
        )
    return items


@rule(
    "set_column",
    "sts",
    "row_context",
    "a first column 'Set' whose cells say 'Training' / 'External validation' (no 'cohort' or 'set' after them)",
)
def _set_column(ln: _Line, labels: list, rest: list, state: dict, caption) -> list | None:
    if len(labels) >= 2:
        m = re.fullmatch(
            r"(?:(external|internal)\s+)?(training|validation|test(?:ing)?)", labels[0].strip(), re.IGNORECASE
        )
        if m:
            state["cohort"] = (f"{m.group(1).lower()}_" if m.group(1) else "") + m.group(2).lower().replace(
                "testing", "test"
            )


@rule(
    "cyrillic_lookalikes", "sts", "normalize", "Cyrillic letters PDF-to-text put for Latin ones ('Р' for the P column)"
)
def _cyrillic(text: str) -> str:
    return text.translate(str.maketrans("РСОАЕТНМВКХрсоае", "PCOAETHMBKXpcoae"))


@rule(
    "size_after_comma",
    "sts",
    "cohort",
    "'(training set, n=116; external validation set, n=126)': a size stated right after the cohort, overriding "
    "a count the sentence gives the cohorts together ('In total, 242 patients ... (training set, ...')",
)
def _size_after_comma(line: _Line, s: str, cohorts: dict) -> None:
    for _a, b, label, _ in _cohort_mentions(s):
        m = re.match(r"\s*[,:]\s*[nN]\s*=\s*(\d+)", s[b:])
        if m:
            c = cohorts.setdefault(label, {})
            c["n"] = int(m.group(1))
            c["where"] = {"line": line.no, "quote": s.strip()[:200]}


@rule(
    "no_citation_lists",
    "us",
    "value_filter",
    "reference numbers in parentheses after a metric ('diagnostic accuracy (2, 19)')",
)
def _no_citation_lists(s: str, pos: int, raw: str, pct: bool) -> bool:
    return (
        "." not in raw
        and not pct
        and bool(re.match(r"\(\s*\d+(?:\s*[,–-]\s*\d+)*\s*\)", s[pos - 1 : pos + 40]) if pos > 0 else False)
        or ("." not in raw and not pct and bool(re.search(r"\(\s*(?:\d+\s*[,–-]\s*)+$", s[max(0, pos - 12) : pos])))
    )


@rule("other_studies", "us", "value_filter", "numbers of other studies ('Wang et al. achieved an AUC of 0.94')")
def _other_studies(s: str, pos: int, raw: str, pct: bool) -> bool:
    return bool(re.search(r"\bet al\b|previous stud|prior stud|systematic review", s[:pos], re.IGNORECASE))


_ABBR_DEF = re.compile(
    r"\b((?:(?:external|internal)\s+)?(?:training|validation|test(?:ing)?)\s+(?:cohort|set))s?\s*"
    r"\(\s*([A-Z]{2,5})\s*\)",
    re.IGNORECASE,
)


@rule(
    "cohort_abbreviations",
    "us",
    "cohort_mention",
    "cohorts the paper abbreviates ('training cohort (TC)', 'external validation cohort (EVC)': 'in the TC and EVC')",
)
def _cohort_abbreviations(s: str) -> list[tuple[int, int, str, bool]]:
    abbr = _COHORT_ABBR.get() or {}
    out = []
    for m in re.finditer(r"\b(" + "|".join(map(re.escape, abbr)) + r")\b", s) if abbr else ():
        before = s[max(0, m.start() - 12) : m.start()].lower()
        after = s[m.end() : m.end() + 4]
        closing = bool(re.search(r"\b(?:in|for|on|of|and)\s+(?:the\s+)?$", before)) and (
            not after.strip() or after.strip()[0] in ",.;)" or after.startswith(" and") or after.startswith(" was")
        )
        out.append((m.start(), m.end(), abbr[m.group(1)], closing))
    return out


_COHORT_ABBR: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cohort_abbreviations", default=None)


@rule("learn_cohort_abbreviations", "us", "normalize", "collects the abbreviations 'training cohort (TC)' defines")
def _learn_cohort_abbreviations(text: str) -> str:
    found = {}
    for m in _ABBR_DEF.finditer(text):
        lab = _COHORT_RE.search(m.group(1))
        if lab:
            found[m.group(2)] = _cohort_label(lab)
    _COHORT_ABBR.set(found)
    return text


_NAME = r"[A-Z][\w\-]*(?:\s*\+\s*[A-Z][\w\-]*)*"
_VS_P = re.compile(
    rf"(?:({_NAME})\s+and\s+)?({_NAME})\s*\(\s*({_NUM})\s+vs\.?\s+({_NUM})\s*,\s*[Pp]\s*([=<>])\s*"
    r"(0?\.\d+)\s*\)"
)


@rule(
    "auc_pairs_with_p",
    "us",
    "sentence",
    "'the CRDL significantly outperformed CM (0.948 vs. 0.870, P = 0.01)': two AUCs and their comparison's P",
)
def _auc_pairs_with_p(line: _Line, s: str, ctx: dict) -> list[Item]:
    subject = re.search(
        r"\b(?:the\s+)?([A-Z][\w+\-]*)\s+(?:significantly\s+)?(?:outperformed|performed better than|"
        r"was better than|than)",
        s,
    )
    cohort = ctx.get("cohort_hint")
    out = []
    for m in _VS_P.finditer(s):
        other = m.group(2)
        a = m.group(1) or (subject.group(1) if subject else ctx.get("model", "model"))
        p = m.group(6) if m.group(5) == "=" else f"{m.group(5)}{m.group(6)}"
        for model, raw in ((a, m.group(3)), (other, m.group(4))):
            out.append(
                Item(
                    "reported",
                    "AUC",
                    _to_float(raw),
                    _decimals_of(raw),
                    cohort,
                    model,
                    line.no,
                    s.strip()[:300],
                    line.section,
                )
            )
        out.append(
            Item(
                "comparison",
                "DeLong",
                None,
                None,
                cohort,
                a,
                line.no,
                s.strip()[:300],
                line.section,
                None,
                None,
                {"model_b": other, "se": None, "diff": None, "p_value": float(p) if m.group(5) == "=" else p},
            )
        )
    return out


@rule("bounds_are_not_values", "us", "value_filter", "'its specificity was below 50%': a bound, not a value")
def _bounds(s: str, pos: int, raw: str, pct: bool) -> bool:
    return bool(
        re.search(
            r"(?:below|above|over|under|less than|more than|greater than|at least|at most|exceed(?:ed|ing)?"
            r"|[<>≤≥])\s*$",
            s[max(0, pos - 16) : pos],
            re.IGNORECASE,
        )
    )
