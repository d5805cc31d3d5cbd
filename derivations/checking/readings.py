"""Other readings of a claim's text: the small slips people make when writing backprop by hand.

Each reading is one edit of the formula's Python syntax tree (``ast``; the text is never run):
a transpose of one operand added or dropped, the operands of a product swapped, the whole
formula transposed, a sum/mean taken over the other axis, one term of a sum dropped (an extra
contribution), two blocks of a ``vstack``/``hstack`` exchanged, a layer index ±1.  A reading is
(edit, text, why): ``edit`` says what was changed in words, ``why`` is the one-line rule that
says where the change belongs.  Readings are only candidates: a diagnosis names one only after
the checker's own verdict says it holds.
"""
import ast
import copy
import re
from itertools import combinations

PRODUCT_WHY = ("with Z = A B, dJ = tr(G dZ) = tr(G dA B) + tr(G A dB) = tr(B G dA) + tr(G A dB) "
               "(cyclic property), so ∇A = ∇Z Bᵀ and ∇B = Aᵀ ∇Z: {what} enters transposed")
SWAP_WHY = "the matrix product does not commute: ∇A = ∇Z Bᵀ puts ∇Z on the left, ∇B = Aᵀ ∇Z on the right"
LAYOUT_WHY = "grad(X) has the shape of X; jac(X) = dJ/dX in numerator layout is its transpose"
AXIS_WHY = "a bias broadcast along an axis gets the gradient summed along that same axis"
TERM_WHY = "a gradient sums one term per use of the node; this term belongs to no use"
BLOCK_WHY = "a stacked gradient keeps the blocks in the order the forward pass stacks them"
INDEX_WHY = "each layer's gradient uses that layer's own input and weights"
REDUCTIONS = {"sum", "mean", "var", "max", "std"}
STACKS = {"vstack", "hstack", "concatenate", "cat"}
MAX_PAIRS = 24


def tree(text):
    """The formula's expression tree, or None when it is not Python syntax."""
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None


def show(node):
    return ast.unparse(node)


def atomic(node):
    return isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant))


def transposed_text(node):
    return f"{show(node)}.T" if atomic(node) else f"({show(node)}).T"


class Edit(ast.NodeTransformer):
    """Replaces each target node (by identity) with ``make(node)``, then edits inside it."""

    def __init__(self, targets):
        self.targets = targets

    def visit(self, node):
        while id(node) in self.targets:
            node = self.targets.pop(id(node))(node)
        return self.generic_visit(node)


def edited(root, edits):
    """The text of ``root`` with each (index, make) edit applied (indices in ``preorder``)."""
    new = copy.deepcopy(root)
    nodes = preorder(new)
    return show(Edit({id(nodes[i]): make for i, make in edits}).visit(new))


def preorder(root):
    out = []

    def walk(node):
        out.append(node)
        for child in ast.iter_child_nodes(node):
            walk(child)
    walk(root)
    return out


def operands(nodes, names):
    """Positions of the names of arrays (not functions) and of `.T` attributes."""
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    out = []
    for i, n in enumerate(nodes):
        if isinstance(n, ast.Attribute) and n.attr == "T" and id(n) not in called:
            out.append((i, "drop", show(n.value)))
        elif isinstance(n, ast.Name) and n.id in names and id(n) not in called:
            parent_t = any(isinstance(p, ast.Attribute) and p.attr == "T" and p.value is n for p in nodes)
            if not parent_t:
                out.append((i, "add", n.id))
    return out


def toggle(kind):
    if kind == "drop":
        return lambda n: n.value
    return lambda n: ast.Attribute(value=n, attr="T", ctx=ast.Load())


def transposes(root, nodes, names, pairs):
    singles = operands(nodes, names)
    for i, kind, what in singles:
        yield (f"{'missing' if kind == 'add' else 'extra'} transpose of {what}",
               edited(root, [(i, toggle(kind))]),
               PRODUCT_WHY.format(what=what) if kind == "add" else PRODUCT_WHY.format(what="only the other factor"))
    if pairs:
        for (i, ki, wi), (j, kj, wj) in list(combinations(singles, 2))[:MAX_PAIRS]:
            words = " and ".join(f"{'missing' if k == 'add' else 'extra'} transpose of {w}"
                                 for k, w in ((ki, wi), (kj, wj)))
            yield words, edited(root, [(i, toggle(ki)), (j, toggle(kj))]), PRODUCT_WHY.format(what="the other factor")


def swaps(root, nodes):
    for i, n in enumerate(nodes):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult):
            yield (f"operands of `{show(n)}` swapped",
                   edited(root, [(i, lambda x: ast.BinOp(left=x.right, op=x.op, right=x.left))]), SWAP_WHY)
        elif isinstance(n, ast.Call) and len(n.args) == 2 and not n.keywords and \
                isinstance(n.func, ast.Attribute) and n.func.attr in ("dot", "matmul"):
            yield (f"operands of `{show(n)}` swapped",
                   edited(root, [(i, lambda x: ast.Call(func=x.func, args=x.args[::-1], keywords=[]))]), SWAP_WHY)


def axis_of(call):
    """(where, value) of a reduction's axis: ('kw', k) or ('arg', position), or None."""
    for k, kw in enumerate(call.keywords):
        if kw.arg in ("axis", "dim") and isinstance(kw.value, ast.Constant):
            return ("kw", k), kw.value.value
    method = isinstance(call.func, ast.Attribute) and not (isinstance(call.func.value, ast.Name)
                                                           and call.func.value.id in ("np", "numpy", "torch"))
    position = 0 if method else 1
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return ("arg", position), call.args[position].value
    return None


def axes(root, nodes):
    for i, n in enumerate(nodes):
        if not (isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) in REDUCTIONS):
            continue
        found = axis_of(n)
        if not found or found[1] not in (0, 1, -1):
            continue
        (where, k), value = found
        new = 0 if value in (1, -1) else 1

        def make(x, where=where, k=k, new=new):
            x = ast.Call(func=x.func, args=list(x.args), keywords=[ast.keyword(arg=w.arg, value=w.value)
                                                                   for w in x.keywords])
            if where == "kw":
                x.keywords[k].value = ast.Constant(new)
            else:
                x.args[k] = ast.Constant(new)
            return x
        yield (f"summed over the wrong axis: axis={new}, not axis={value}, in `{show(n)}`",
               edited(root, [(i, make)]), AXIS_WHY)


def terms(root, nodes):
    for i, n in enumerate(nodes):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            yield f"an extra term `{show(n.right)}`", edited(root, [(i, lambda x: x.left)]), TERM_WHY
            if isinstance(n.op, ast.Add):
                yield f"an extra term `{show(n.left)}`", edited(root, [(i, lambda x: x.right)]), TERM_WHY


def blocks(root, nodes):
    for i, n in enumerate(nodes):
        if not (isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) in STACKS):
            continue
        listed = len(n.args) == 1 and isinstance(n.args[0], (ast.List, ast.Tuple))
        parts = n.args[0].elts if listed else n.args
        for a, b in combinations(range(len(parts)), 2):
            def make(x, a=a, b=b, listed=listed):
                items = list(x.args[0].elts if listed else x.args)
                items[a], items[b] = items[b], items[a]
                args = [type(x.args[0])(elts=items, ctx=ast.Load())] if listed else items
                return ast.Call(func=x.func, args=args, keywords=x.keywords)
            yield (f"blocks {a + 1} and {b + 1} of `{show(n.func)}` exchanged ({show(parts[a])}, {show(parts[b])})",
                   edited(root, [(i, make)]), BLOCK_WHY)


def indices(text, names):
    for match in re.finditer(r"\b([A-Za-z_]\w*?)(\d+)\b", text):
        base, index = match.group(1), int(match.group(2))
        for new in (index - 1, index + 1):
            if f"{base}{new}" in names and new >= 0:
                yield (f"layer index: {base}{new}, not {match.group(0)}",
                       text[:match.start()] + f"{base}{new}" + text[match.end():], INDEX_WHY)


def readings(text, names, pairs=False):
    """Every one-edit reading of ``text`` (two transposes at once when ``pairs``), each
    (edit, text, why), cheap and likely slips first, without duplicates or the text itself."""
    root = tree(text)
    if root is None:
        return []
    nodes = preorder(root)
    out, seen = [], {show(root)}
    families = [axes(root, nodes), transposes(root, nodes, names, False), swaps(root, nodes),
                [("the formula transposed", transposed_text(root), LAYOUT_WHY)],
                indices(show(root), names), terms(root, nodes), blocks(root, nodes)]
    if pairs:
        families.append(transposes(root, nodes, names, True))
    for family in families:
        for edit, new, why in family:
            if new not in seen:
                seen.add(new)
                out.append((edit, new, why))
    return out
