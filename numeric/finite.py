"""Numeric derivatives of a scalar function of one real array.

``f`` takes an array shaped like ``x`` and returns a scalar or a 1×1 array.  The complex-step
forms need ``f`` to be complex-safe (as ``numeric.evaluate`` is): they read the derivative
off the imaginary part, exact to rounding with no subtractive cancellation.
"""
import numpy as np

from tracegrad.symbolic.errors import TracegradError


def _scalar(value):
    a = np.asarray(value)
    if a.size != 1:
        raise TracegradError(f"function must return a scalar or a 1x1 array, got shape {a.shape}")
    return a.reshape(())[()]


def _real(x, what="x"):
    a = np.asarray(x)
    if a.dtype.kind not in "biufc":
        raise TracegradError(f"{what} must be a numeric array, not {type(x).__name__}")
    if a.dtype.kind == "c":
        if np.any(a.imag != 0):
            raise TracegradError(f"{what} must be real")
        a = a.real
    return a.astype(np.float64)


def _step(h):
    if not h > 0:
        raise TracegradError(f"step h must be positive, got {h}")
    return h


def central_difference(f, x, h=None):
    """df/dx by central differences; default step cbrt(eps)·max(1, |x|) per entry."""
    x = _real(x)
    if h is None:
        h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
    try:
        h = np.broadcast_to(np.asarray(h, dtype=np.float64), x.shape)
    except ValueError:
        raise TracegradError(f"step h of shape {np.shape(h)} does not fit x of shape "
                             f"{x.shape}") from None
    if np.any(~(h > 0)):
        raise TracegradError("step h must be positive")
    grad = []
    for k in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[k] += h[k]
        down[k] -= h[k]
        # divide by the step actually taken, after rounding of x ± h
        grad.append((_scalar(f(up)) - _scalar(f(down))) / (up[k] - down[k]))
    return np.array(grad).reshape(x.shape)


def complex_step(f, x, h=1e-30):
    """df/dx entry by entry: Im f(x + i·h·e_k) / h."""
    x, h = _real(x).astype(np.complex128), _step(h)
    grad = np.empty(x.shape)
    for k in np.ndindex(x.shape):
        xk = x.copy()
        xk[k] += 1j * h
        grad[k] = np.imag(_scalar(f(xk))) / h
    return grad


def directional_complex_step(f, x, v, h=1e-30):
    """Directional derivative ⟨∇f(x), v⟩ = Im f(x + i·h·v) / h, as a float."""
    x, v, h = _real(x), _real(v, "v"), _step(h)
    if x.shape != v.shape:
        raise TracegradError(f"direction v has shape {v.shape}, expected {x.shape}")
    return np.float64(np.imag(_scalar(f(x + 1j * h * v))) / h)
