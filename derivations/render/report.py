"""Plain-text report of a claims check."""

MARK = {"holds": "holds", "fails": "FAILS", "error": "ERROR", "inconclusive": "inconclusive"}


def format_report(report):
    """Each claim with its verdict and evidence; where a 'holds' relied on the TRUE value of a
    claim whose own formula fails (``ClaimResult.given``), the report says the chain breaks."""
    given = {r.name: r.given for r in report.results if r.given}
    formulas = {r.name: r.formula for r in report.results}
    loss = f" under loss {report.loss}" if report.loss else ""
    lines = [f"model {report.model}{loss} (seed {report.seed})"]
    width = max((len(r.name) for r in report.results), default=0)
    for r in report.results:
        at = f"   (line {r.line})" if r.line is not None else ""
        lines.append(f"  {r.name:<{width}} = {r.formula}{at}")
        lines.append(f"  {'':<{width}}   {MARK[r.verdict]}: {r.evidence}")
        if r.name in given:
            broken = ", ".join(given[r.name])
            lines.append(f"  {'':<{width}}   given the true {broken}: its own formula "
                         f"({'; '.join(formulas[b] for b in given[r.name])}) fails here, so the chain of these "
                         f"formulas does not hold from {broken} on")
        for note in r.diagnosis:
            lines.append(f"  {'':<{width}}   - {note}")
        if r.suggestion:
            lines.append(f"  {'':<{width}}   did you mean: {r.name} = {r.suggestion}")
    counts = {v: sum(r.verdict == v for r in report.results) for v in MARK}
    summary = [f"{n} {v}" for v, n in counts.items() if n]
    if given:
        summary[0] += f" ({len(given)} only given the true value of a claim that fails)"
    lines.append("  " + ", ".join(summary))
    return "\n".join(lines)
