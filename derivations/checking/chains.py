"""Chains of claims.  A claim that uses another claim's name is checked with that name at its
TRUE value (DESIGN §4), so "delta3 holds" means "delta3 holds given the true delta4".  Where the
other claim's own formula does not hold, the chain of the source's formulas breaks there, and a
report must say so: these functions find where."""
import ast


def names_used(formula):
    """The identifiers a formula reads (its calls' names excluded)."""
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError:
        return set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def differentiated(model, name):
    """The names X whose grad(X) or jac(X) the meaning of ``name`` is built from, in order."""
    found, todo, seen = [], [name], set()
    while todo:
        n = todo.pop(0)
        if n in seen or n not in model.meanings:
            continue
        seen.add(n)
        try:
            tree = ast.parse(model.meanings[n].strip(), mode="eval")
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("grad", "jac") and \
                    node.args and isinstance(node.args[0], ast.Name) and node.args[0].id not in found:
                found.append(node.args[0].id)
        todo += sorted(names_used(model.meanings[n]) & set(model.meanings))
    return found


def given(model, results):
    """{claim: the claims, in the report's order, whose TRUE value it was checked with although
    their own formula does not hold in this report} — for claims whose verdict is 'holds'.

    ``results`` are (name, formula, verdict) triples (ClaimResults work); a claim depends on the
    claims it names, and on those they name, as written in the source."""
    formulas = {r.name: r.formula for r in results}
    broken = {r.name for r in results if r.verdict != "holds"}
    out = {}
    for r in results:
        if r.verdict != "holds":
            continue
        seen, todo = set(), [n for n in names_used(r.formula) if n in formulas and n != r.name]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += [m for m in names_used(formulas[n]) if m in formulas and m != n]
        hit = [n for n in formulas if n in seen & broken]
        if hit:
            out[r.name] = tuple(hit)
    return out
