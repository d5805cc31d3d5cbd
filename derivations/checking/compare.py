"""`compare`: two formula sets, each claim checked under its model's own loss and every other."""
from dataclasses import dataclass

from tracegrad.checking.chains import differentiated
from tracegrad.checking.claims import check_model, derived
from tracegrad.errors import UsageError
from tracegrad.losses import LOSSES

# Models whose formula sets answer each other: the seed question's two sources, and the
# question itself, which quotes both.
PARTNERS = {"ng": ("ng", "sudeep"), "sudeep": ("ng", "sudeep"), "seed-question": ("ng", "sudeep")}


def partner(name):
    """The pair of built-in models ``compare`` puts side by side for model ``name``, or None."""
    return PARTNERS.get(name)


@dataclass(frozen=True)
class ComparedClaim:
    name: str
    formula: str
    verdicts: dict           # loss -> verdict
    given: dict = None       # loss -> claims whose TRUE value a 'holds' relied on, their own formula failing


@dataclass(frozen=True)
class Reason:
    """Why a claim's verdict changes with the loss: the engine's derivative of the quantity the
    claim means, as each loss's derivation recorded it (its chain-rule form, then each named
    rewrite).  Nothing here is typed in; ``derivations`` are the derivations themselves."""
    model: str
    claim: str
    meaning: str
    quantity: object         # the symbol the claim's meaning differentiates, e.g. z4
    upstream: tuple          # the symbols whose adjoints its chain-rule form uses, e.g. (a4,)
    derivations: tuple       # (loss, Derivation) for each loss compared


@dataclass(frozen=True)
class ComparedModel:
    name: str
    title: str
    own_loss: str | None
    claims: tuple            # ComparedClaim, in the model's order
    reasons: tuple = ()      # Reason, for each claim whose verdict depends on the loss
    derivation: object = None   # the model's own derivation


@dataclass(frozen=True)
class Comparison:
    losses: tuple
    loss: str | None         # the one loss asked for, or None for all of them
    models: tuple            # ComparedModel

    @property
    def ok(self):
        """With one loss asked for: does every claim of both models hold under it?"""
        return self.loss is None or all(c.verdicts[self.loss] == "holds" for m in self.models for c in m.claims)

    def as_dict(self):
        from tracegrad.render.steps import identification
        out = {}
        for m in self.models:
            out[m.name] = {c.name: {"formula": c.formula, "verdicts": dict(c.verdicts),
                                    "given": {l: list(g) for l, g in (c.given or {}).items()}} for c in m.claims}
            for r in m.reasons:
                out[m.name][r.claim]["why"] = {
                    loss: [{"quantity": x.name, "steps": [{"math": l.math, "why": l.why}
                                                          for l in identification(d, x)]}
                           for x in (*r.upstream, r.quantity)] for loss, d in r.derivations}
        return out


def compare(a, b, loss=None, progress=None):
    """Each model's claims with its verdict under its own loss and under every other loss
    (only ``loss``, when given), why a verdict changes with the loss, and where a claim holds
    only given the true value of a claim that fails.  ``progress(text)`` hears which check runs."""
    losses = (loss,) if loss else tuple(LOSSES)
    models = []
    for model in (a, b):
        own = model.loss.get("name")
        reports = {}
        for l in losses:
            if progress:
                progress(f"checking {model.name} under {l}")
            # verdicts only: compare shows no diagnosis, so none is searched for
            try:
                reports[l] = check_model(model, loss=None if l == own else l, explain=False).results
            except UsageError as e:      # its sizes too large for a claim: say which model's
                raise UsageError(f"model {model.name}: {e}") from None
        verdicts = {l: {r.name: r.verdict for r in reports[l]} for l in losses}
        chains = {l: {r.name: r.given for r in reports[l]} for l in losses}
        claims = tuple(ComparedClaim(n, f, {l: verdicts[l][n] for l in losses},
                                     {l: chains[l][n] for l in losses if chains[l].get(n)})
                       for n, f in model.claims.items())
        changing = [c for c in claims if len(set(c.verdicts.values())) > 1]
        models.append(ComparedModel(model.name, model.title, own, claims, reasons(model, changing, losses),
                                    model.derivation))
    if progress:
        progress("")
    return Comparison(losses, loss, tuple(models))


def reasons(model, claims, losses):
    own = model.loss.get("name")      # the checks used the model's own derivation for its own loss
    derivations = tuple((l, derived(model, None if l == own else l)) for l in losses) if claims else ()
    out = []
    for c in claims:
        for name in differentiated(model, c.name):
            d = derivations[0][1]
            x = next((s for s in d.forms["compact"] if s.name == name), None)
            if x is None:
                continue
            inverse = {g: s for s, g in d.adjoint_symbols.items()}
            upstream = tuple(inverse[g] for g in sorted(d.adjoint(x, "compact").free_symbols, key=str)
                             if g in inverse)
            out.append(Reason(model.name, c.name, model.meanings[c.name], x, upstream, derivations))
    return tuple(out)
