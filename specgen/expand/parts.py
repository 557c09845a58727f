"""The parts of the model, in order: input, encoder, bottleneck, decoder, output activation.

:class:`Expansion` runs the whole pass: the pre-pass, the input shape, the skips, each part's
items (joining skips into a part's output when it is complete), the bottleneck (its items, or the
library block its shorthand stands for), the output activation, the training section and the
model outputs (:mod:`~specgen.expand.outputs`); then the leftovers are reported, and a spec
without errors is frozen into its graph and checked whole (:mod:`specgen.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..checks import check_graph, explain_resolution
from ..errors import Path, Source, SpecErrors
from ..graph import INPUT, ModelGraph, TensorRef
from ..layers import REGISTRY
from ..library import library, shorthand_block
from ..schema import BlockItem, Bottleneck, InputSpec, OutputSpec, SpecDocument, TrainingSpec
from ..validate import validate_model
from .budget import Abort, Budget, parameter_limit
from .evaluate import FAILED, Evaluator, extend
from .freeze import freeze
from .items import Items
from .leftovers import report_leftovers
from .nodes import DraftGraph
from .prepass import prepass
from .scopes import Names, Scope
from .skips import Skips


class Expansion:
    """One spec document with its parameter values, expanded into its graph by :meth:`build`."""

    def __init__(self, doc: SpecDocument, params: Mapping[str, Any], source: Source | None):
        self.budget = Budget(source)
        # the library's blocks, as if the spec had defined them (its own replace them)
        lib = library()
        borrowed = {n: b for n, b in lib.blocks.items() if n not in doc.blocks}
        self.budget.library = {n: lib.sources[n] for n in borrowed}
        self.own_blocks = frozenset(doc.blocks)
        self.doc = doc.model_copy(update={"blocks": {**borrowed, **doc.blocks}})
        self.params = params
        self.source = source
        self.evaluator = Evaluator(self.budget)
        self.draft = DraftGraph(self.budget)
        self.names = Names(self.budget, self.draft.port_count)
        self.bottleneck_cfg = None

    def build(self) -> ModelGraph:
        try:
            return self._build()
        except Abort:
            raise SpecErrors(self.budget.located(self.budget.errors), self.source) from None
        except SpecErrors as exc:
            raise SpecErrors(self.budget.located(exc.errors), exc.source) from None

    def check_requirements(self) -> bool:
        """The spec's own conditions on its parameters (``require:``), each reported with the
        spec's message at its condition; whether they all hold."""
        before = len(self.budget.errors)
        for i, req in enumerate(self.doc.require):
            path = ("require", i, "that")
            got = self.evaluator.try_evaluate(req.that, self.params, path)
            if got is FAILED:
                continue
            if not isinstance(got, bool):
                self.budget.error(f"a requirement must be true or false, got {got!r}", path)
            elif not got:
                self.budget.error(
                    f"requirement not met: {req.message}",
                    path,
                    hint="give the parameters values that meet it (--set NAME=VALUE)",
                )
        return len(self.budget.errors) == before

    def _build(self) -> ModelGraph:
        doc, params, names, draft = self.doc, self.params, self.names, self.draft
        errors = self.budget.errors
        rejected = prepass(doc, self.budget)
        if not self.check_requirements():
            # what the spec builds from parameters it refuses would only repeat the cause
            raise SpecErrors(errors, self.source)
        items = Items(doc, params, self.budget, self.evaluator, names, draft, rejected)
        skips = Skips(doc, params, self.budget, self.evaluator, names, draft, items.expand_items)
        items.skips = skips
        spec_input = self.section(InputSpec, doc.input.model_dump(by_alias=True), ("input",))
        if spec_input is not None:
            draft.input_shape = tuple(spec_input.shape)
        if draft.input_shape is None:  # nothing can be checked without it
            raise SpecErrors(errors, self.source)
        skips.collect()
        enc = Scope("encoder", "encoder", TensorRef(INPUT), params)
        names.parts["encoder"] = enc
        names.parts["decoder"] = Scope("decoder", "decoder", None, params)
        enc_out = items.expand_items(doc.encoder, enc, ("encoder",))
        enc_out = self.finish_part(skips, "encoder", enc_out)
        bott_out = self.expand_bottleneck(items, enc_out)
        dec = names.parts["decoder"]
        dec.input = bott_out
        dec_out = items.expand_items(doc.decoder, dec, ("decoder",))
        dec_out = self.finish_part(skips, "decoder", dec_out)
        out_cfg = self.section(OutputSpec, doc.output.model_dump(), ("output",))
        dec_out = self.output_activation(out_cfg, dec, dec_out)
        training = None
        if doc.training is not None:
            data = doc.training.model_dump(by_alias=True)
            training = self.section(TrainingSpec, data, ("training",))
        declared = items.outputs
        top = Scope("", "", TensorRef(INPUT), params)
        declared.declare(doc.outputs, top, params, ("outputs",), top_level=True)
        report_leftovers(self.budget, names, draft, skips.pending)
        outputs, roles = declared.finish(dec_out)
        if errors:
            errors = explain_resolution(draft.input_shape, draft.nodes.values(), errors)
            raise SpecErrors(errors, self.source)
        graph = freeze(
            doc,
            params,
            self.source,
            draft,
            (enc_out, bott_out, dec_out),
            outputs,
            self.bottleneck_cfg,
            out_cfg.activation if out_cfg else "linear",
            training,
            out_cfg.reconstructs if out_cfg else True,
            roles,
        )
        trainable, non_trainable, _ = graph.counts()
        too_large = parameter_limit(trainable + non_trainable)
        if too_large is not None:
            raise SpecErrors([too_large], self.source)
        problems = check_graph(graph)
        if problems:
            raise SpecErrors(problems, self.source)
        return graph

    def section(self, model, data: Any, path: Path):
        """A top-level section of the spec, evaluated and validated by ``model``; None (the
        errors recorded) if either fails."""
        data = self.evaluator.try_evaluate(data, self.params, path)
        if data is FAILED:
            return None
        try:
            return validate_model(model, data, path)
        except SpecErrors as exc:
            self.budget.errors.extend(exc.errors)
            return None

    def finish_part(self, skips: Skips, part: str, out: TensorRef | None) -> TensorRef | None:
        if part in skips.pending:  # skips joining the whole part's output
            out = skips.join(part, out)
        self.names.tensors[part] = out
        return out

    def expand_bottleneck(self, items: Items, current: TensorRef | None) -> TensorRef | None:
        """The bottleneck part on the encoder's output ``current``; returns the decoder's input.

        A list of items is expanded like a part of its own. The shorthand ``{kind: K, ...}`` is
        validated as the kind's fields, then stands for the library block ``K_bottleneck`` with
        the fields written as its arguments, inlined in the bottleneck scope; the graph records
        the shorthand unless the spec replaced that block with its own."""
        path = ("bottleneck",)
        section = self.doc.bottleneck
        if isinstance(section, list):
            scope = Scope("bottleneck", "bottleneck", current, self.params)
            self.names.parts["bottleneck"] = scope
            return items.expand_items(section, scope, path)
        block = shorthand_block(section.kind)
        own = block in self.own_blocks
        role = "layer" if own else "bottleneck"
        scope = Scope("bottleneck", "bottleneck", current, self.params, role=role)
        self.names.parts["bottleneck"] = scope
        data = {"kind": section.kind, **section.model_dump(by_alias=True, exclude_unset=True)}
        cfg = self.section(Bottleneck, data, path)
        if cfg is None:
            return None
        if not own:
            self.bottleneck_cfg = cfg
        args = cfg.model_dump(exclude_unset=True, exclude={"kind"})
        use = BlockItem(block=block, args=args, inline=True)
        env = extend(scope.env, self.draft.shape_variables(current))
        return items.expand_block_use(use, scope, current, env, path)

    def output_activation(self, out_cfg, dec: Scope, dec_out: TensorRef | None):
        """The decoder's output through the output activation, if there is one."""
        if out_cfg is None or out_cfg.activation == "linear":
            return dec_out
        path = ("output", "activation")
        full = self.names.claim(dec, "output_activation", path)
        if full:
            kind = out_cfg.activation
            layer = self.draft.validate_layer(REGISTRY[kind], {"kind": kind})
            dec_out = self.draft.add_node(full, layer, [dec_out], dec, path)
            self.names.tensors[full] = dec_out
        return dec_out
