"""Plain-text report of a claims check."""

MARK = {"holds": "holds", "fails": "FAILS", "error": "ERROR", "inconclusive": "inconclusive"}


def format_report(report):
    loss = f" under loss {report.loss}" if report.loss else ""
    lines = [f"model {report.model}{loss} (seed {report.seed})"]
    width = max((len(r.name) for r in report.results), default=0)
    for r in report.results:
        at = f"   (line {r.line})" if r.line is not None else ""
        lines.append(f"  {r.name:<{width}} = {r.formula}{at}")
        lines.append(f"  {'':<{width}}   {MARK[r.verdict]}: {r.evidence}")
        for note in r.diagnosis:
            lines.append(f"  {'':<{width}}   - {note}")
        if r.suggestion:
            lines.append(f"  {'':<{width}}   did you mean: {r.name} = {r.suggestion}")
    counts = {v: sum(r.verdict == v for r in report.results) for v in MARK}
    lines.append("  " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    return "\n".join(lines)
