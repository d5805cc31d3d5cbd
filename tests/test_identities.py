"""Matrix-calculus identities: every case derived by the engine, then checked twice.

(a) exactly, at tiny explicit sizes, against SymPy's entry-wise ``diff`` (tests/oracle.py);
(b) numerically, with distinct dimensions (2, 3, 5, 7), against complex-step differences of
    the compiled cost, and against the closed form of the identity where one is known.

Gradients are in the Matrix Cookbook's layout (∇_X J has the shape of X); equation numbers
refer to The Matrix Cookbook (Petersen & Pedersen, version of November 15, 2012).
"""
from dataclasses import dataclass, field

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from tracegrad.numeric import central_difference, complex_step, evaluate
from tracegrad.symbolic import (NoRuleError, Program, ShapeError, TracegradError, derive, elementwise,
                      relu, sigmoid, softmax)
from tracegrad.symbolic.shapes import same_shape, shape_of
from tests.oracle import exact_gradient_check

p, q, r, s, m = sp.symbols("p q r s m", integer=True, positive=True)
EXACT = {p: 2, q: 3, r: 2, s: 3, m: 3}      # tiny: SymPy differentiates every entry
NUMERIC = {p: 2, q: 3, r: 5, s: 7, m: 4}    # distinct, so a swapped dimension cannot hide

M = sp.MatrixSymbol
T = sp.Transpose
tr = sp.Trace
ones = sp.OneMatrix
had = sp.HadamardProduct
a_, c_ = sp.symbols("a c")                  # scalar parameters


def entry(x):
    """A 1×1 matrix expression as the scalar it stands for."""
    return MatrixElement(x, 0, 0)


def ew(f, X):
    return elementwise(f, X)


@dataclass
class Case:
    id: str
    cost: object                  # scalar / 1×1 SymPy expression, or a Program
    wrt: tuple
    expected: dict = field(default_factory=dict)   # wrt -> closed-form gradient (shape of wrt)
    positive: tuple = ()          # names of symbols whose entries must be positive
    dominant: tuple = ()          # names of square symbols drawn diagonally dominant
    central: bool = False         # use central differences instead of the complex step
    exact_sizes: dict = field(default_factory=dict)   # overrides of EXACT for this case

    def expression(self):
        """The cost as one expression over the inputs (a Program expanded)."""
        program = Program.of(self.cost)
        return program.expanded_cost


CASES = []


def case(id, cost, wrt, expected=None, **kw):
    assert set(expected or {}) <= set(wrt), id
    CASES.append(Case(id, cost, tuple(wrt), expected or {}, **kw))


# ---------------------------------------------------------------------------------- traces
X = M("X", p, q)
Xs = M("X", r, r)                     # square X
A_qp, A_pq, A_rr, A_sp = M("A", q, p), M("A", p, q), M("A", r, r), M("A", s, p)
B_qs, B_rr, B_pp, B_qq, B_pq = M("B", q, s), M("B", r, r), M("B", p, p), M("B", q, q), M("B", p, q)
C_pp, C_rr, C_sp = M("C", p, p), M("C", r, r), M("C", s, q)

case("cookbook-(99) d tr(X)/dX", tr(Xs), [Xs], {Xs: sp.Identity(r)})
case("cookbook-(100) d tr(XA)/dX", tr(X * A_qp), [X], {X: A_qp.T})
case("cookbook-(100') d tr(AX)/dX", tr(A_qp * X), [X], {X: A_qp.T})
case("cookbook-(101) d tr(AXB)/dX", tr(A_sp * X * B_qs), [X], {X: A_sp.T * B_qs.T})
case("cookbook-(101) d tr(AXB)/dA,dB", tr(A_sp * X * B_qs), [A_sp, B_qs, X],
     {A_sp: (X * B_qs).T, B_qs: (A_sp * X).T})
case("cookbook-(102) d tr(AXᵀB)/dX", tr(M("A", s, q) * X.T * M("B", p, s)), [X],
     {X: M("B", p, s) * M("A", s, q)})
case("cookbook-(103) d tr(XᵀA)/dX", tr(X.T * A_pq), [X], {X: A_pq})
case("cookbook-(104) d tr(AXᵀ)/dX", tr(A_pq * X.T), [X], {X: A_pq})
case("cookbook-(106) d tr(X X)/dX (MatMul of a repeated factor)",
     tr(sp.MatMul(Xs, Xs)), [Xs], {Xs: 2 * Xs.T})
case("cookbook-(106) d tr(X²)/dX (MatPow)", tr(sp.MatPow(Xs, 2)), [Xs], {Xs: 2 * Xs.T})
case("cookbook-(107) d tr(X²B)/dX", tr(sp.MatPow(Xs, 2) * B_rr), [Xs],
     {Xs: (Xs * B_rr + B_rr * Xs).T})
case("cookbook-(108) d tr(XᵀBX)/dX", tr(X.T * B_pp * X), [X], {X: B_pp * X + B_pp.T * X})
case("cookbook-(111) d tr(XBXᵀ)/dX", tr(X * B_qq * X.T), [X], {X: X * B_qq.T + X * B_qq})
case("cookbook-(114) d tr(AXBX)/dX", tr(M("A", q, p) * X * M("B", q, p) * X), [X],
     {X: M("A", q, p).T * X.T * M("B", q, p).T + M("B", q, p).T * X.T * M("A", q, p).T})
case("cookbook-(115) d tr(XᵀX)/dX", tr(X.T * X), [X], {X: 2 * X})
case("cookbook-(115') d tr(XXᵀ)/dX", tr(X * X.T), [X], {X: 2 * X})
case("cookbook-(116) d tr(BᵀXᵀCXB)/dX", tr(M("B", q, s).T * X.T * C_pp * X * M("B", q, s)), [X],
     {X: C_pp.T * X * M("B", q, s) * M("B", q, s).T + C_pp * X * M("B", q, s) * M("B", q, s).T})
case("cookbook-(117) d tr(XᵀBXC)/dX", tr(X.T * B_pp * X * M("C", q, q)), [X],
     {X: B_pp * X * M("C", q, q) + B_pp.T * X * M("C", q, q).T})
case("cookbook-(118) d tr(AXBXᵀC)/dX", tr(M("A", s, p) * X * B_qq * X.T * M("C", p, s)), [X],
     {X: M("A", s, p).T * M("C", p, s).T * X * B_qq.T + M("C", p, s) * M("A", s, p) * X * B_qq})
_R = M("A", s, p) * X * M("B", q, r) + M("C", s, r)
case("cookbook-(119) d tr[(AXB+C)(AXB+C)ᵀ]/dX", tr(_R * _R.T), [X],
     {X: 2 * M("A", s, p).T * _R * M("B", q, r).T})
case("cookbook-(121) d tr(X³)/dX", tr(sp.MatPow(Xs, 3)), [Xs], {Xs: 3 * sp.MatPow(Xs, 2).T})
case("cookbook-(122) d tr(AX³)/dX", tr(A_rr * sp.MatPow(Xs, 3)), [Xs],
     {Xs: (A_rr * Xs * Xs + Xs * A_rr * Xs + Xs * Xs * A_rr).T})
case("cookbook-(124) d tr(AX⁻¹B)/dX", tr(M("A", s, r) * sp.Inverse(Xs) * M("B", r, s)), [Xs],
     {Xs: -(Xs.I * M("B", r, s) * M("A", s, r) * Xs.I).T}, dominant=("X",))
case("inverse d tr(X⁻¹A)/dX", tr(sp.Inverse(Xs) * A_rr), [Xs, A_rr],
     {Xs: -(Xs.I * A_rr * Xs.I).T, A_rr: Xs.I.T}, dominant=("X",))

# ---------------------------------------------------------------------- determinants
case("cookbook-(49) d det(X)/dX", sp.Determinant(Xs), [Xs],
     {Xs: sp.Determinant(Xs) * Xs.I.T}, dominant=("X",))
case("cookbook-(57) d log det(X)/dX", sp.log(sp.Determinant(Xs)), [Xs], {Xs: Xs.I.T},
     dominant=("X",))
case("cookbook-(51) d det(AXB)/dX", sp.Determinant(A_rr * Xs * B_rr), [Xs],
     {Xs: sp.Determinant(A_rr * Xs * B_rr) * Xs.I.T}, dominant=("X", "A", "B"))

# ------------------------------------------------------------- linear and quadratic forms
a_p, b_q, x_q, b_p = M("a", p, 1), M("b", q, 1), M("x", q, 1), M("b", p, 1)
a_r, b_r = M("a", r, 1), M("b", r, 1)
case("cookbook-(69) d aᵀx/dx", a_p.T * M("x", p, 1), [M("x", p, 1)], {M("x", p, 1): a_p})
case("cookbook-(70) d aᵀXb/dX", a_p.T * X * b_q, [X, a_p, b_q],
     {X: a_p * b_q.T, a_p: X * b_q, b_q: X.T * a_p})
case("cookbook-(71) d aᵀXᵀb/dX", M("a", q, 1).T * X.T * b_p, [X], {X: b_p * M("a", q, 1).T})
case("cookbook-(72) d aᵀXa/dX", a_r.T * Xs * a_r, [Xs, a_r],
     {Xs: a_r * a_r.T, a_r: (Xs + Xs.T) * a_r})
case("cookbook-(77) d bᵀXᵀXc/dX", b_q.T * X.T * X * M("c", q, 1), [X],
     {X: X * (b_q * M("c", q, 1).T + M("c", q, 1) * b_q.T)})
case("cookbook-(81) d xᵀBx/dx", x_q.T * B_qq * x_q, [x_q], {x_q: (B_qq + B_qq.T) * x_q})
case("cookbook-(82) d bᵀXᵀDXc/dX", b_q.T * X.T * M("D", p, p) * X * M("c", q, 1), [X],
     {X: M("D", p, p).T * X * b_q * M("c", q, 1).T + M("D", p, p) * X * M("c", q, 1) * b_q.T})
_u = X * b_q + M("c", p, 1)
case("cookbook-(83) d (Xb+c)ᵀD(Xb+c)/dX", _u.T * M("D", p, p) * _u, [X],
     {X: (M("D", p, p) + M("D", p, p).T) * _u * b_q.T})
case("aᵀXXᵀb d/dX", a_p.T * X * X.T * b_p, [X], {X: (a_p * b_p.T + b_p * a_p.T) * X})
case("cookbook-(61) d aᵀX⁻¹b/dX", a_r.T * Xs.I * b_r, [Xs],
     {Xs: -Xs.I.T * a_r * b_r.T * Xs.I.T}, dominant=("X",))
_res = M("A", s, q) * x_q - M("b", s, 1)
case("least squares d (Ax−b)ᵀ(Ax−b)/dx", _res.T * _res, [x_q, M("A", s, q)],
     {x_q: 2 * M("A", s, q).T * _res, M("A", s, q): 2 * _res * x_q.T})

# ------------------------------------------------------------------ entry-wise operations
O_q1, O_1p = ones(q, 1), ones(1, p)
case("Hadamard d tr((A∘X)B)/dX", tr(had(A_pq, X) * M("B", q, p)), [X, A_pq],
     {X: had(A_pq, M("B", q, p).T), A_pq: had(X, M("B", q, p).T)})
case("L2 term d 1ᵀ(X∘X)1/dX", O_1p * had(X, X) * O_q1, [X], {X: 2 * X})
case("HadamardPower d 1ᵀX^∘3 1/dX", O_1p * sp.HadamardPower(X, 3) * O_q1, [X],
     {X: 3 * sp.HadamardPower(X, 2)})
case("HadamardPower d 1ᵀP^∘c 1/dc,dP (scalar exponent)",
     O_1p * sp.HadamardPower(M("P", p, q), c_) * O_q1, [c_, M("P", p, q)],
     {M("P", p, q): c_ * sp.HadamardPower(M("P", p, q), c_ - 1)}, positive=("P",))
case("element-wise exp d 1ᵀexp(X)1/dX", O_1p * ew(sp.exp, X) * O_q1, [X], {X: ew(sp.exp, X)})
case("element-wise log d 1ᵀ(A∘log P)1/dP", O_1p * had(A_pq, ew(sp.log, M("P", p, q))) * O_q1,
     [M("P", p, q)], {M("P", p, q): had(A_pq, sp.HadamardPower(M("P", p, q), -1))},
     positive=("P",))
case("element-wise sin d aᵀsin(X)b/dX", a_p.T * ew(sp.sin, X) * b_q, [X],
     {X: had(a_p * b_q.T, ew(sp.cos, X))})
case("element-wise tanh d tr(A tanh(X))/dX", tr(A_qp * ew(sp.tanh, X)), [X],
     {X: had(A_qp.T, ones(p, q) - sp.HadamardPower(ew(sp.tanh, X), 2))})
case("sigmoid d tr(A σ(X))/dX", tr(A_qp * ew(sigmoid, X)), [X],
     {X: had(A_qp.T, ew(sigmoid, X), ones(p, q) - ew(sigmoid, X))})
case("relu d tr(A relu(X))/dX (away from kinks)", tr(A_qp * ew(relu, X)), [X])
case("relu composite d 1ᵀ relu(AX) 1/dX, central differences",
     ones(1, s) * ew(relu, M("A", s, p) * X) * O_q1, [X, M("A", s, p)], central=True)
_lam = sp.Lambda(sp.Symbol("t"), sp.exp(a_ * sp.Symbol("t")))
case("Lambda exp(a·x) with a scalar parameter d/da, d/dX", O_1p * ew(_lam, X) * O_q1, [a_, X],
     {X: a_ * ew(_lam, X)})
case("X.applyfunc(f) for a SymPy Lambda d tr(A f(X))/dX",
     tr(A_qp * X.applyfunc(sp.Lambda(sp.Symbol("u"), sp.Symbol("u") ** 3 + sp.sin(sp.Symbol("u"))))),
     [X], {X: had(A_qp.T, 3 * sp.HadamardPower(X, 2) + ew(sp.cos, X))})

# ---------------------------------------------------------------- scalars and traces
case("scalar parameter d c·tr(X)/dc, d/dX", c_ * tr(Xs), [c_, Xs],
     {c_: tr(Xs), Xs: c_ * sp.Identity(r)})
case("scalar inside the trace d tr(cX)/dc, d/dX", tr(sp.MatMul(c_, Xs)), [c_, Xs],
     {c_: tr(Xs), Xs: c_ * sp.Identity(r)})
case("d tr(X + Xᵀ)/dX (an adjoint 2I)", tr(sp.MatAdd(Xs, Xs.T)), [Xs], {Xs: 2 * sp.Identity(r)})
case("scalar function of a trace d (tr(X)² + 1)/dX", tr(Xs) ** 2 + 1, [Xs],
     {Xs: 2 * tr(Xs) * sp.Identity(r)})
case("scalar parameter d c·tr(AX)/dc, d/dX", c_ * tr(A_qp * X), [c_, X],
     {c_: tr(A_qp * X), X: c_ * A_qp.T})
case("scalar function of a trace d (tr(AX)² + 1)/dX, non-square X", tr(A_qp * X) ** 2 + 1, [X],
     {X: 2 * tr(A_qp * X) * A_qp.T})
case("scalar functions of traces d log(tr(XᵀX)) + tr(AX)³/dX", sp.log(tr(X.T * X)) + tr(A_qp * X) ** 3,
     [X], {X: 2 * X / tr(X.T * X) + 3 * tr(A_qp * X) ** 2 * A_qp.T})
case("product of traces d tr(AX)·tr(BX)/dX", tr(A_qp * X) * tr(M("B", q, p) * X), [X],
     {X: tr(M("B", q, p) * X) * A_qp.T + tr(A_qp * X) * M("B", q, p).T})
case("logsumexp d log(1ᵀexp(x))/dx", sp.log(ones(1, q) * ew(sp.exp, x_q)), [x_q],
     {x_q: ew(sp.exp, x_q) / (ones(1, q) * ew(sp.exp, x_q))[0, 0]})
_lse = Program()
_lse.define("J", sp.log(ones(1, q) * ew(sp.exp, x_q)))
case("logsumexp as a Program", _lse, [x_q])
case("1×1 entries d (aᵀXb)[0,0]² · (1ᵀXb)[0,0]/dX,da",
     entry(a_p.T * X * b_q) ** 2 * entry(O_1p * X * b_q), [X, a_p],
     {X: 2 * entry(a_p.T * X * b_q) * entry(O_1p * X * b_q) * a_p * b_q.T
      + entry(a_p.T * X * b_q) ** 2 * ones(p, 1) * b_q.T})
case("entries of a symbol d X[0,1]·X[1,0] + 3 X[0,0]/dX",
     MatrixElement(Xs, 0, 1) * MatrixElement(Xs, 1, 0) + 3 * MatrixElement(Xs, 0, 0), [Xs])
case("1×1 product used as a scalar d sin(aᵀXb)/dX", sp.sin(MatrixElement(a_p.T * X * b_q, 0, 0)),
     [X], {X: sp.cos(MatrixElement(a_p.T * X * b_q, 0, 0)) * a_p * b_q.T})

# -------------------------------------------------------------------- softmax
Z_pm, Y_pm = M("Z", p, m), M("Y", p, m)
case("softmax per column + cross-entropy d −1ᵀ(Y∘log S)1/dZ",
     -ones(1, p) * had(Y_pm, ew(sp.log, softmax(Z_pm, 0))) * ones(m, 1), [Z_pm],
     {Z_pm: had(softmax(Z_pm, 0), ones(p, p) * Y_pm) - Y_pm})
case("softmax per row + cross-entropy d −1ᵀ(Y∘log S)1/dZ",
     -ones(1, p) * had(Y_pm, ew(sp.log, softmax(Z_pm, 1))) * ones(m, 1), [Z_pm],
     {Z_pm: had(softmax(Z_pm, 1), Y_pm * ones(m, m)) - Y_pm})
case("softmax per column d tr(A S)/dZ", tr(M("A", m, p) * softmax(Z_pm, 0)), [Z_pm])

# ------------------------------------------------------------- stacking and slicing
Bs = M("B", r, q)


case("vertical stacking d tr(C [X; B])/dX,dB",
     tr(M("C", q, p + r) * sp.BlockMatrix([[X], [Bs]])),
     [X, Bs], {X: M("C", q, p + r)[:, :p].T, Bs: M("C", q, p + r)[:, p:].T})
_hs = sp.BlockMatrix([[X, M("A", p, r)]])
case("horizontal stacking d 1ᵀ([X, A] ∘ [X, A])1/dX,dA",
     ones(1, p) * had(_hs, _hs) * ones(q + r, 1),
     [X, M("A", p, r)], {X: 2 * X, M("A", p, r): 2 * M("A", p, r)})
case("stacking the same symbol twice d aᵀ[X; X]b/dX",
     M("a", 2 * p, 1).T * sp.BlockMatrix([[X], [X]]) * b_q,
     [X], {X: (M("a", 2 * p, 1)[:p, :] + M("a", 2 * p, 1)[p:, :]) * b_q.T})
_grid = sp.BlockMatrix([[X, ew(sp.tanh, X * M("A", q, r))], [M("B", s, q), M("C", s, r)]])
case("2×2 block grid d tr(D [X, tanh(XA); B, C])/dX,dA,dC",
     tr(M("D", q + r, p + s) * _grid), [X, M("A", q, r), M("C", s, r)],
     {M("C", s, r): M("D", q + r, p + s)[q:, p:].T})

case("row slice d tr(A X[1:, :])/dX", tr(M("A", q, p - 1) * X[1:, :]), [X])
case("column slice d 1ᵀ (X[:, 1:] ∘ X[:, 1:]) 1/dX",
     O_1p * had(X[:, 1:], X[:, 1:]) * ones(q - 1, 1), [X])
case("row block slice d aᵀ Xs[1:, :2] b/dX", M("a", r - 1, 1).T * Xs[1:, :2] * M("b", 2, 1), [Xs])

# ------------------------------------------------------------------ network-shaped
n0, n1 = p, q   # input and hidden widths; columns are examples (m of them)
Xn, Yn = M("X", n0, m), M("Y", 1, m)
W, b = M("W", n0, 1), M("b", 1, 1)
_Z = W.T * Xn + b * ones(1, m)
_A = ew(sigmoid, _Z)
_bce = -(1 / m) * (had(Yn, ew(sp.log, _A)) + had(ones(1, m) - Yn, ew(sp.log, ones(1, m) - _A))) * ones(m, 1)
case("logistic regression BCE d/dW, d/db (b broadcast by 1ᵀ)", _bce, [W, b],
     {W: (1 / m) * Xn * (_A - Yn).T, b: (1 / m) * (_A - Yn) * ones(m, 1)})


def two_layer(out, l2=False):
    """Z1 = W1ᵀX + b1 1ᵀ, A1 = relu(Z1), Z2 = W2ᵀA1 + b2 1ᵀ; sigmoid + BCE or softmax + CE."""
    k = 1 if out == "sigmoid" else r
    W1, b1, W2, b2 = M("W1", n0, n1), M("b1", n1, 1), M("W2", n1, k), M("b2", k, 1)
    Y = M("Y", k, m)
    prog = Program()
    Z1 = prog.define("Z1", W1.T * Xn + b1 * ones(1, m))
    A1 = prog.define("A1", ew(relu, Z1))
    Z2 = prog.define("Z2", W2.T * A1 + b2 * ones(1, m))
    if out == "sigmoid":
        A2 = prog.define("A2", ew(sigmoid, Z2))
        loss = -(1 / m) * (had(Y, ew(sp.log, A2))
                           + had(ones(k, m) - Y, ew(sp.log, ones(k, m) - A2))) * ones(m, 1)
    else:
        A2 = prog.define("A2", softmax(Z2, 0))
        loss = -(1 / m) * ones(1, k) * had(Y, ew(sp.log, A2)) * ones(m, 1)
    if l2:
        lam = sp.Symbol("lambda")
        loss = loss + (lam / (2 * m)) * (ones(1, n0) * had(W1, W1) * ones(n1, 1)
                                         + ones(1, n1) * had(W2, W2) * ones(k, 1))
    prog.define("J", loss)
    return prog, [W1, b1, W2, b2, Xn]


_net, _params = two_layer("sigmoid")
_A1, _A2, _Y1 = M("A1", n1, m), M("A2", 1, m), M("Y", 1, m)
case("2-layer relu→sigmoid BCE d/dW1,b1,W2,b2,X", _net, _params,
     {_params[2]: _net.expand((1 / m) * _A1 * (_A2 - _Y1).T),     # the BCE∘σ collapse
      _params[3]: _net.expand((1 / m) * (_A2 - _Y1) * ones(m, 1))})
_net, _params = two_layer("softmax")
case("2-layer relu→softmax cross-entropy d/dW1,b1,W2,b2,X", _net, _params, exact_sizes={m: 2})
_net, _params = two_layer("sigmoid", l2=True)
case("2-layer BCE + L2 term (λ/2m)(‖W1‖² + ‖W2‖²) d/dW1,W2,λ", _net,
     [_params[0], _params[2], sp.Symbol("lambda")])

Xr, Wr, br, Yr = M("X", m, p), M("W", p, q), M("b", q, 1), M("Y", m, q)   # rows are examples
_out = Xr * Wr + ones(m, 1) * br.T
case("rows-as-examples XW + 1bᵀ, MSE ½‖XW + 1bᵀ − Y‖²/m d/dW,db,dX",
     (1 / (2 * m)) * ones(1, m) * had(_out - Yr, _out - Yr) * ones(q, 1), [Wr, br, Xr],
     {Wr: (1 / m) * Xr.T * (_out - Yr), br: (1 / m) * (_out - Yr).T * ones(m, 1),
      Xr: (1 / m) * (_out - Yr) * Wr.T})
_An, _Yn = M("A", p, m), M("Y", p, m)
case("MSE ½‖A − Y‖²/m d/dA", (1 / (2 * m)) * tr((_An - _Yn).T * (_An - _Yn)), [_An],
     {_An: (_An - _Yn) / m})
_mse = Program()
_Zm = _mse.define("Z", M("W", q, p) * _An)
_mse.define("L", (1 / (2 * m)) * ones(1, q) * had(_Zm - M("Y", q, m), _Zm - M("Y", q, m)) * ones(m, 1))
case("linear layer + MSE as a Program d/dW, d/dA", _mse, [M("W", q, p), _An],
     {M("W", q, p): (1 / m) * (M("W", q, p) * _An - M("Y", q, m)) * _An.T})
case("a symbol used several times: tr(XAX) + aᵀXb + c·tr(X) + 1ᵀ(X∘X)1",
     tr(Xs * A_rr * Xs) + entry(a_r.T * Xs * b_r) + tr(Xs) * c_
     + entry(ones(1, r) * had(Xs, Xs) * ones(r, 1)),
     [Xs, c_], {Xs: (A_rr * Xs + Xs * A_rr).T + a_r * b_r.T + c_ * sp.Identity(r) + 2 * Xs,
                c_: tr(Xs)})
_multi = Program()
_H = _multi.define("H", Xs * A_rr)
_K = _multi.define("K", _H * Xs + _H.T)
_multi.define("J", tr(_K * _K) + entry(a_r.T * _H * b_r))
case("a named intermediate used by later definitions (sum over uses)", _multi, [Xs, A_rr])

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "case ids must be unique"


# --------------------------------------------------------------------------- checkers
def draw(symbol, sizes, rng, case):
    """A real value for ``symbol`` at ``sizes``, honouring the case's positivity needs."""
    if isinstance(symbol, sp.MatrixSymbol):
        rows, cols = (int(sp.sympify(d).xreplace(sizes)) for d in symbol.shape)
        if symbol.name in case.positive:
            return rng.uniform(0.5, 2.0, size=(rows, cols))
        value = rng.normal(size=(rows, cols))
        if symbol.name in case.dominant and rows == cols:
            value += 2 * rows * np.eye(rows)
        return value
    return rng.uniform(0.5, 1.5)


def point(case, cost, sizes, seed):
    rng = np.random.default_rng(seed)
    leaves = sorted((cost.free_symbols | set(case.wrt)) - set(sizes), key=str)
    return {x: draw(x, sizes, rng, case) for x in leaves} | sizes


def numeric_gradient(case, cost, values, x):
    def f(v):
        v = v[()] if np.ndim(v) == 0 else v
        return evaluate(cost, {**values, x: v})
    method = central_difference if case.central else complex_step
    return method(f, np.asarray(values[x], dtype=float))


def relative_error(got, want):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))


@pytest.fixture(scope="module")
def derived():
    """Each case derived once, shared by the exact and numeric checks."""
    cache = {}

    def get(case):
        if case.id not in cache:
            cache[case.id] = derive(case.cost, list(case.wrt))
        return cache[case.id]
    return get


def test_enough_identities():
    assert len(CASES) >= 45


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shapes(case, derived):
    d = derived(case)
    for x in case.wrt:
        if isinstance(x, sp.MatrixSymbol):
            assert same_shape(shape_of(d.gradient(x)), x.shape), x
            assert same_shape(shape_of(d.jacobian(x)), x.T.shape), x
        else:
            assert shape_of(d.gradient(x)) is None and shape_of(d.jacobian(x)) is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact(case, derived):
    d = derived(case)
    checked = exact_gradient_check(case.expression(), d, case.wrt, EXACT | case.exact_sizes, seed=1,
                                   positive=case.positive, dominant=case.dominant)
    assert checked >= len(case.wrt)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numeric(case, derived):
    d = derived(case)
    cost = case.cost if not isinstance(case.cost, Program) else case.expression()
    for seed in (11, 12):
        values = point(case, cost, NUMERIC, seed)
        for x in case.wrt:
            got = evaluate(d.gradient(x), values)
            assert np.shape(got) == np.shape(values[x]), x
            want = numeric_gradient(case, cost, values, x)
            tol = 1e-6 if case.central else 1e-10
            assert relative_error(got, want) < tol, f"{x}: derived {got} vs numeric {want}"
            if x in case.expected:
                closed = evaluate(case.expected[x], values)
                assert relative_error(got, np.reshape(closed, np.shape(got))) < 1e-10, \
                    f"{x}: derived {got} vs closed form {closed}"


# ------------------------------------------------------------- SymPy's diff as an oracle
# SymPy's MatrixExpr.diff knows a few trace identities; where it answers, it must agree.
# (It is not used more widely: e.g. SymPy 1.14 gives log(det(X)).diff(X) == 0.)
SYMPY_DIFF = [
    ("tr(AXB)", tr(A_sp * X * B_qs), X),
    ("tr(XᵀA)", tr(X.T * A_pq), X),
    ("tr(aᵀXb)", tr(a_p.T * X * b_q), X),
    ("tr(XBXᵀ)", tr(X * B_qq * X.T), X),
    ("tr(X²)", tr(sp.MatPow(Xs, 2)), Xs),
    ("tr(X⁻¹B)", tr(Xs.I * B_rr), Xs),
]


@pytest.mark.parametrize("cost, x", [c[1:] for c in SYMPY_DIFF], ids=[c[0] for c in SYMPY_DIFF])
def test_sympy_diff_agrees(cost, x):
    theirs = cost.diff(x)
    assert not theirs.has(sp.Derivative) and theirs != 0
    values = point(Case("sympy", cost, (x,), dominant=("X",)), cost, NUMERIC, seed=5)
    ours = evaluate(derive(cost, [x]).gradient(x), values)
    assert relative_error(ours, np.reshape(evaluate(theirs, values), np.shape(ours))) < 1e-10


# ------------------------------------------------------------------------------ errors
def test_shape_error_names_the_node():
    A = M("A", p, q)
    with pytest.raises(ShapeError, match=r"'A\*\*2'"):     # SymPy turns A*A into A**2
        derive(tr(A * A), [A])
    program = Program()
    with pytest.raises(ShapeError, match=r"matrix product 'A\*X'"):
        program.define("Z", A * Xs)
    with pytest.raises(ShapeError, match=r"cost 'J' must be a scalar or 1×1, not \(p, q\)"):
        derive(A, [A])
    with pytest.raises(ShapeError, match=r"matrix 'A' is used as a scalar"):
        derive(sp.sin(A), [A])
    assert issubclass(ShapeError, TracegradError)


@pytest.mark.parametrize("cost, x, name", [
    (tr(KroneckerProduct(M("A", p, p), Xs)), Xs, "KroneckerProduct"),
    (tr(KroneckerProduct(M("A", p, p), Xs)), M("A", p, p), "KroneckerProduct"),
    (ones(1, p * r) * KroneckerProduct(M("A", p, p), Xs) * ones(p * r, 1), Xs, "KroneckerProduct"),
    (tr(sp.Adjoint(Xs) * B_rr), Xs, "Adjoint"),
    (tr(sp.DiagMatrix(a_r) * Xs), a_r, "DiagMatrix"),
    (tr(sp.MatPow(Xs, sp.Symbol("k", integer=True, positive=True))), Xs, "power k"),
    (tr(sp.MatPow(Xs, -2)), Xs, "power -2"),
    (tr(Xs[::2, ::2]), Xs, "strided slice"),
], ids=["kron-wrt-X", "kron-wrt-A", "kron-1x1", "adjoint", "diag", "symbolic-power",
        "negative-power", "strided-slice"])
def test_operation_without_a_rule_raises(cost, x, name):
    """Never a silent 0: an operation on the path to X without a rule is an error naming it."""
    with pytest.raises(NoRuleError, match=name):
        derive(cost, [x])


def test_operation_without_a_rule_off_the_path_is_fine():
    """Only nodes that depend on what is differentiated need a rule."""
    A, B = M("A", p, p), M("B", p, p)
    d = derive(tr(KroneckerProduct(A, B)) * tr(C_rr * Xs), [Xs])
    cost = tr(A) * tr(B) * tr(C_rr * Xs)       # numeric has no Kronecker product: tr(A⊗B) = tr A tr B
    grad = d.gradient(Xs).replace(lambda e: isinstance(e, sp.Trace) and isinstance(e.arg, KroneckerProduct),
                                  lambda e: tr(A) * tr(B))
    values = point(Case("kron", cost, (Xs,)), cost, NUMERIC, seed=3)
    want = complex_step(lambda v: evaluate(cost, {**values, Xs: v}), values[Xs])
    assert relative_error(evaluate(grad, values), want) < 1e-10


def test_unused_symbol_is_an_error():
    with pytest.raises(TracegradError, match="does not use it"):
        derive(tr(A_rr * Xs), [B_rr])
