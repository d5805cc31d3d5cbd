"""Expressions of a code file: the formula language's parser over the file's own names, with
the forms a program adds — containers indexed by a loop variable, helper calls, ``len``/``float``,
3-D embedding lookups ``C[Xb]`` and their reshapes, labels per position."""
import ast

import sympy as sp

from tracegrad.language import broadcast as bc
from tracegrad.language.formula import Parser, dotted
from tracegrad.language.labels import SingleLabel
from tracegrad.language.values import LabelSymbol, Shape, Vector, row_of
from tracegrad.symbolic.algebra import add, matmul, submatrix
from tracegrad.symbolic.shapes import is_matrix, same_dim

from tracegrad.language.codefile.arrays import Array, Container, Flat, Function, LabelGrid, Stack


def literal(value):
    """A module literal or a default as a SymPy value (numbers only)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(value))


def side_by_side(blocks):
    """[B₀ B₁ … ] for blocks of one width w, as Σⱼ Bⱼ I[j·w:(j+1)·w, :] (I of size k·w): the same
    value as a block matrix, in products and slices the checker's normal form handles quickly."""
    width = blocks[0].shape[1]
    whole = sp.Identity(len(blocks) * width)
    return add(*[matmul(b, submatrix(whole, (j * width, (j + 1) * width), (0, len(blocks) * width)))
                 for j, b in enumerate(blocks)])


class CodeParser(Parser):
    """Reads expressions in the scope of ``reader`` (an Interpreter): names are its bindings."""

    def __init__(self, reader):
        super().__init__("", {}, dialect=reader.code.dialect)
        self.reader = reader
        # positions are the file's own: no leading lines stripped
        self.source, self.shift_lines, self.shift_col = reader.code.source, 0, 0
        self.lines, self.multiline = self.source.splitlines() or [""], True

    def lookup(self, node, name):
        found = self.reader.binding(node, name)
        if isinstance(found, Array):
            return found.value
        if isinstance(found, Function):
            self.fail(node, f"function '{name}' must be called")
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return literal(found)
        if isinstance(found, (str, bool, list, dict)) or found is None:
            self.fail(node, f"'{name}' is {type(found).__name__ if found is not None else 'None'}, "
                            f"not an array or a number")
        return found

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            self.fail(node, "a string is only a dict key here, as in grads['W1']")
        return super().visit_Constant(node)

    # containers: displays, items

    def visit_Tuple(self, node):
        return Container({k: self.reader.evaluate(e) for k, e in enumerate(node.elts)}, "tuple")

    def visit_List(self, node):
        return Container({k: self.reader.evaluate(e) for k, e in enumerate(node.elts)}, "list")

    def visit_Dict(self, node):
        if any(k is None for k in node.keys):
            self.fail(node, "a '**' in a dict display is not allowed")
        return Container({self.key(k): self.reader.evaluate(v) for k, v in zip(node.keys, node.values)})

    def key(self, node):
        """A container key known before running: an integer (t, t - 1, -1) or a string."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        value = self.translate(node)
        value = value.value if isinstance(value, Array) else value
        if not (isinstance(value, sp.Basic) and value.is_Integer):
            self.fail(node, f"'{self.segment(node)}' is not a key known before running "
                            f"(an integer such as t - 1, or a string)")
        return int(value)

    def subscript(self, node, target):
        index = node.slice
        if isinstance(target, Container):
            key = self.key(index)
            if key not in target.items:
                if isinstance(key, int) and target.kind != "dict" and -len(target.items) <= key < 0:
                    key += len(target.items)
                else:
                    self.fail(node, f"'{self.segment(node.value)}' has no item {key!r} here")
            item = target.items[key]
            return item.value if isinstance(item, Array) else item
        if isinstance(target, LabelGrid):
            return self.label_position(node, target, index)
        if isinstance(target, Stack):
            items = index.elts if isinstance(index, ast.Tuple) else [index]
            whole = lambda i: isinstance(i, ast.Slice) and i.lower is i.upper is i.step is None  # noqa: E731
            if len(items) in (2, 3) and whole(items[0]) and (len(items) == 2 or whole(items[2])):
                j = self.key(items[1])
                if isinstance(j, int) and -len(target.blocks) <= j < len(target.blocks):
                    return target.blocks[j]
            self.fail(node, "a 3-D array is indexed as emb[:, j, :] (position j)")
        return super().subscript(node, target)

    def label_position(self, node, grid, index):
        """Xb[:, j] (the labels at position j) or targets[t] (the t-th label of a sequence)."""
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        if grid.per_example:
            if len(items) == 2 and isinstance(items[0], ast.Slice) and items[0].lower is None \
                    and items[0].upper is None:
                j = self.key(items[1])
                if isinstance(j, int) and -len(grid.positions) <= j < len(grid.positions):
                    return grid.positions[j]
            self.fail(node, "labels per position are indexed as Xb[:, j]")
        if len(items) == 1:
            t = self.key(items[0])
            if isinstance(t, int) and -len(grid.positions) <= t < len(grid.positions):
                return grid.positions[t]
        self.fail(node, f"'{self.segment(node)}': a label sequence is indexed by one position")

    def labelled(self, node, target, items):
        if len(items) == 1 and isinstance(target, sp.MatrixExpr):
            found = self.translate(items[0])
            if isinstance(found, LabelGrid) and found.per_example:
                # C[Xb]: the labelled rows of C for each position (examples × positions × features)
                for y in found.positions:
                    if not same_dim(target.rows, y.cols):
                        self.fail(node, f"labels of {y.cols} classes index {target.rows} rows")
                return Stack(tuple(matmul(y, target) for y in found.positions))
        return super().labelled(node, target, items)

    # attributes, reshapes and calls

    def visit_Attribute(self, node):
        if node.attr == "shape":
            target = self.translate(node.value)
            if isinstance(target, (Stack, LabelGrid)):
                return Shape(target.shape)
        return super().visit_Attribute(node)

    def reshape(self, node, a):
        wanted = self.reshape_sizes(node.args)
        minus = [sp.expand(w + 1) == 0 for w in wanted]
        if isinstance(a, Stack):
            if len(wanted) == 2 and minus[1] and same_dim(wanted[0], a.shape[0]):
                return side_by_side(a.blocks)
            if len(wanted) == 2 and minus[0] and same_dim(wanted[1], a.shape[2]):
                return Flat(a.blocks)
            self.fail(node, "a 3-D array is reshaped as emb.view(N, -1) (positions side by side) "
                            "or emb.view(-1, d) (for index_add_)")
        if isinstance(a, LabelGrid) and wanted and all(minus) and len(wanted) == 1:
            return Flat(a.positions)
        if len(wanted) == 3 and is_matrix(row_of(a)):
            return self.unstack(node, row_of(a), wanted)
        return super().reshape(node, a)

    def unstack(self, node, matrix, wanted):
        """dembcat.view(N, B, d): the B column blocks of an N × (B·d) matrix as a 3-D array."""
        rows, positions, width = wanted
        if not (positions.is_Integer and same_dim(rows, matrix.rows) and
                same_dim(positions * width, matrix.cols)):
            self.fail(node, f"cannot view {matrix.rows} × {matrix.cols} as {tuple(wanted)}")
        k = int(positions)
        return Stack(tuple(bc.slice_(matrix, (None, None), (j * width, (j + 1) * width), "view")
                           for j in range(k)))

    def reshape_sizes(self, args):
        if len(args) == 1 and isinstance(args[0], (ast.Attribute, ast.Name)):
            found = self.translate(args[0])
            if isinstance(found, Shape):
                return list(found.dims)
        return super().reshape_sizes(args)

    def call_name(self, node, name):
        found = self.reader.binding(node, name, missing_ok=True)
        if isinstance(found, Function):
            return self.reader.inline(node, found)
        if name in ("float", "int"):
            if len(node.args) != 1 or node.keywords:
                self.fail(node, f"{name}() takes one value")
            value = row_of(self.value(node.args[0]))
            if is_matrix(value):
                self.fail(node, f"{name}() of an array")
            return value
        if name == "len":
            return self.dim(node)
        if name in ("range", "reversed", "print"):
            self.fail(node, f"{name}() is only allowed as a statement or a loop's range")
        return super().call_name(node, name)

    def dimension_value(self, node):
        if isinstance(node, ast.Call) and dotted(node.func) == ["len"] and len(node.args) == 1:
            found = self.translate(node.args[0])
            if isinstance(found, (LabelGrid, Stack)):
                return found.shape[0]
            if isinstance(found, LabelSymbol) and not isinstance(found, SingleLabel):
                return found.rows
            if isinstance(found, Container):
                return sp.Integer(len(found.items))
        return super().dimension_value(node)
