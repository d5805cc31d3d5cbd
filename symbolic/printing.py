def format_derivation(d):
    lines = []
    for s in d.steps:
        lines.append(f"[{s.definition}] {s.rule.name}: {s.node}  G={s.G}  -> " + "; ".join(f"{a}: {b}" for a, b in s.results))
    return "\n".join(lines)
