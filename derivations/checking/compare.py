"""`compare`: two formula sets, each claim checked under its model's own loss and every other."""
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ComparedModel:
    name: str
    title: str
    own_loss: str | None
    claims: tuple            # ComparedClaim, in the model's order


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
        return {m.name: {c.name: {"formula": c.formula, "verdicts": dict(c.verdicts)} for c in m.claims}
                for m in self.models}


def compare(a, b, loss=None, progress=None):
    """Each model's claims with its verdict under its own loss and under every other loss
    (only ``loss``, when given).  ``progress(text)`` hears which check runs."""
    losses = (loss,) if loss else tuple(LOSSES)
    models = []
    for model in (a, b):
        own = model.loss.get("name")
        verdicts = {}
        for l in losses:
            if progress:
                progress(f"checking {model.name} under {l}")
            verdicts[l] = {r.name: r.verdict for r in model.check(loss=None if l == own else l).results}
        claims = tuple(ComparedClaim(n, f, {l: verdicts[l][n] for l in losses}) for n, f in model.claims.items())
        models.append(ComparedModel(model.name, model.title, own, claims))
    if progress:
        progress("")
    return Comparison(losses, loss, tuple(models))
