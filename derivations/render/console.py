"""Output that fits the console: on one that cannot show Unicode (``LANG=C``,
``PYTHONIOENCODING=ascii``) every character it cannot encode is spelled in ASCII instead."""
import codecs
import unicodedata

SPELLINGS = {
    "ᵀ": "^T", "⁻¹": "^-1", "∘": "*", "−": "-", "⇒": "=>", "→": "->", "·": "*", "×": "x",
    "σ": "sigma", "∇": "grad ", "∂": "d", "′": "'", "½": "1/2", "‖": "||", "≥": ">=", "≤": "<=",
    "≠": "!=", "…": "...", "⋯": "...", "Σ": "sum ", "∛": "cbrt ", "ε": "eps", "λ": "lambda",
    "Θ": "Theta", "θ": "theta", "δ": "delta", "Δ": "Delta", "α": "alpha", "√": "sqrt ",
    "⊙": "*", "ᵢ": "i", "ⱼ": "j", "ₖ": "k", "ˡ": "l", "’": "'", "‘": "'", "“": '"', "”": '"',
    "—": "--", "–": "-",
}
HANDLER = "tracegrad-ascii"


def spell(text):
    """``text`` in ASCII: known symbols by their spelling, others by their compatibility
    decomposition (𝟏 → 1, ₃ → 3), and '?' when there is none."""
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in SPELLINGS:
            out.append(SPELLINGS[pair])
            i += 2
            continue
        c = text[i]
        if c.isascii():
            out.append(c)
        else:
            plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
            out.append(SPELLINGS.get(c, plain or "?"))
        i += 1
    return "".join(out)


def _replace(error):
    if not isinstance(error, UnicodeEncodeError):
        raise error
    end = error.end
    # a two-character spelling (⁻¹) split across the error's range is taken whole
    if error.object[end - 1:end + 1] in SPELLINGS:
        end += 1
    return spell(error.object[error.start:end]), end


codecs.register_error(HANDLER, _replace)


def fit(stream):
    """Make ``stream`` spell what its encoding cannot show, instead of raising."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "ᵀ∘𝟏−".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=HANDLER)
