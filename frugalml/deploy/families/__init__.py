"""Model families: what a model's compute is made of decides which candidates a deploy tries,
the limits every candidate of it meets, how many items score it and what is profiled. One
module per family, chosen by one registry; a new family is a module and a registry line (or
:func:`register` from outside), touching no other file.

A family claims a model from its exported graph and task (:class:`GraphFacts`); families are
asked in registry order, built-ins first, and the catch-all ``other`` last.
"""

from __future__ import annotations

from frugalml.core.registry import Registry
from frugalml.deploy.families._family import Family, GraphFacts

CNN, TRANSFORMER, DECODER, OTHER, STREAMING = "cnn", "transformer", "decoder", "other", "streaming"
FAMILIES = Registry("Model family", {
    DECODER: "frugalml.deploy.families.decoder:FAMILY",
    STREAMING: "frugalml.deploy.families.streaming:FAMILY",
    CNN: "frugalml.deploy.families.cnn:FAMILY",
    TRANSFORMER: "frugalml.deploy.families.transformer:FAMILY",
    OTHER: "frugalml.deploy.families.other:FAMILY",
})

__all__ = ["CNN", "DECODER", "FAMILIES", "OTHER", "STREAMING", "TRANSFORMER", "Family",
           "GraphFacts",
           "family_of", "get_family", "names", "register"]


def names() -> tuple[str, ...]:
    """Known families, in the order they are asked (the catch-all last)."""
    return (*(n for n in FAMILIES.names() if n != OTHER), OTHER)


def register(name: str, where: str) -> None:
    """Add a family implemented outside this package (``"module:ATTRIBUTE"``, a
    :class:`Family`); a plug-in's one line. It is asked after the built-ins, before
    ``other``. Registering a known name as something else is refused.

    Raises:
        FrugalError: the name is taken.
    """
    FAMILIES.register(name, where)


def get_family(name: str) -> Family:
    """The family called ``name``.

    Raises:
        FrugalError: the name is unknown (the message lists the known ones).
    """
    family: Family = FAMILIES.load(name)
    return family


def family_of(graph: GraphFacts) -> Family:
    """The first family, in registry order, that claims ``graph``."""
    return next(f for f in map(get_family, names()) if f.name == OTHER or f.claims(graph))
