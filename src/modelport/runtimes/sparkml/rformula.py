"""RFormulaModel (``ml/feature/RFormula.scala``): the feature pipeline Spark fitted for an R formula.

Spark saves the model as metadata, ``data/`` (the resolved formula: ``label``, ``terms`` -- one
list of column names per term, several for an interaction -- and ``hasIntercept``) and
``pipelineModel/``, an ordinary saved PipelineModel holding what ``fit`` built: a StringIndexer
per string column, VectorSizeHint per vector column, OneHotEncoder per string term (``dropLast``
off for the first one when the formula has no intercept), Interaction per ``a:b`` term (on the
raw indices, so every category is kept), the VectorAssembler that writes ``featuresCol``, two
private helpers (``VectorAttributeRewriter`` renames ML attributes, ``ColumnPruner`` drops the
temporary columns) and, for a string label or ``forceIndexLabel``, a StringIndexer on the label.

This stage runs that pipeline with the runtime's own stages. The label is training data: Spark
indexes or casts it only when the label column is present, and a prediction request does not
carry it, so the label indexer is not run and ``featuresCol`` is the stage's one output.
The ML attributes of ``featuresCol`` (Spark renames them with ``VectorAttributeRewriter``) are
rebuilt from the formula's terms, so a VectorSlicer by name after it selects Spark's slots; with a
vector term they are left unknown, and a stage after it that needs them fails at load instead of
selecting the wrong slots.
"""

from __future__ import annotations

from typing import Any

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.features import OneHotEncoderModel, StringIndexerModel
from modelport.runtimes.sparkml.reader import StageMeta, read_data, read_metadata, stage_dirs
from modelport.runtimes.sparkml.stage import STAGES, ColumnInfo, Frame, RowStep, Schema, Stage, register, setup_stage

__all__ = ["RFormulaModel"]

_SPARK = "org.apache.spark.ml.feature."
_PRUNER = _SPARK + "ColumnPruner"
_REWRITER = _SPARK + "VectorAttributeRewriter"
_INDEXER = _SPARK + "StringIndexerModel"


def _source_spec(stage: Stage, column: str) -> tuple[str, tuple[int, ...]]:
    """How a request sends ``column`` when ``stage`` is the first to read it (the pipeline's own rule)."""
    spec = getattr(stage, "input_spec", None)
    if spec is not None:
        result: tuple[str, tuple[int, ...]] = spec(column)
        return result
    return stage.input_datatype(column), (-1,)


@register
class RFormulaModel(Stage):
    spark_classes = (_SPARK + "RFormulaModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        if not {"label", "terms"} <= set(table.column_names) or table.num_rows != 1:
            raise ModelLoadError(f"{meta.path}: RFormulaModel data is not a resolved formula (label, terms)")
        self.label = str(table.column("label")[0].as_py() or "")
        self.terms: list[list[str]] = [list(t) for t in table.column("terms")[0].as_py()]
        inner = meta.path / "pipelineModel"
        if not (inner / "metadata").is_dir():
            raise ModelLoadError(f"{meta.path}: RFormulaModel has no pipelineModel/ directory")
        inner_meta = read_metadata(inner)
        self.features_col = str(meta.get("featuresCol") or "features")
        self.label_col = str(meta.get("labelCol") or "label")
        self.stages: list[Stage] = []
        self.prune: set[str] = set()
        for d in stage_dirs(inner, inner_meta):
            sub = read_metadata(d)
            if sub.cls == _PRUNER:
                self.prune.update(str(c) for c in read_data(d).column("columnsToPrune")[0].as_py())
                continue
            if sub.cls == _REWRITER:
                continue  # renames ML attributes only; the values are the assembler's
            if sub.cls == _INDEXER and self.label and sub.get("inputCol") == self.label:
                continue  # the label: training data, absent from prediction requests
            impl = STAGES.get(sub.cls)
            if impl is None:
                raise ModelLoadError(
                    f"{d}: RFormulaModel's inner stage {sub.cls} (uid {sub.uid}) is not supported by the runtime"
                )
            self.stages.append(impl(sub))
        if not any(self.features_col in s.outputs for s in self.stages):
            raise ModelLoadError(f"{meta.path}: RFormulaModel's pipeline does not produce '{self.features_col}'")
        self.prune.discard(self.features_col)
        self._sources: dict[str, Stage] = {}
        produced: set[str] = set()
        for stage in self.stages:
            for col in stage.inputs:
                if col not in produced and col not in self._sources:
                    self._sources[col] = stage
            produced.update(stage.outputs)
        self._size: int | None = None

    @property
    def formula(self) -> str:
        return str(self.meta.get("formula") or "")

    @property
    def inputs(self) -> list[str]:
        return list(self._sources)

    @property
    def outputs(self) -> list[str]:
        return [self.features_col]

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return _source_spec(self._sources[column], column)

    def setup(self, schema: Schema) -> None:
        for stage in self.stages:
            setup_stage(stage, schema)
        info = schema[self.features_col]
        self._size = info.size
        names = self._slot_names(schema)
        attrs = tuple((n, 0) for n in names) if names is not None and len(names) == info.size else None
        schema[self.features_col] = ColumnInfo("vector", info.size, attrs=attrs)
        for col in self.prune:
            schema.pop(col, None)

    def _slot_names(self, schema: Schema) -> list[str] | None:
        """The slot names Spark's attribute rewriter leaves on ``featuresCol``, or None where not modelled.

        A number term is its column's name; a string term ``c`` is ``c_<label>`` for each one-hot slot
        (the encoder's own slot count, so ``dropLast`` and ``keep`` come out as Spark's); an interaction
        joins one name per input with ``:``, first input outermost, every category of a string input.
        Vector terms (named by the vector's own attributes) are not modelled.
        """
        indexed: dict[str, tuple[str, ...]] = {}  # string column -> every label of its index column
        index_col: dict[str, str] = {}  # string column -> its StringIndexer's output
        onehot: dict[str, int] = {}  # index column -> one-hot slot count
        for stage in self.stages:
            if isinstance(stage, StringIndexerModel):
                for src, dst in stage.pairs:
                    info = schema.get(dst)
                    if info is None or info.labels is None:
                        return None
                    indexed[src], index_col[src] = info.labels, dst
            elif isinstance(stage, OneHotEncoderModel):
                for (src, _), size in zip(stage.pairs, stage.sizes, strict=True):
                    onehot[src] = size
        names: list[str] = []
        for term in self.terms:
            parts: list[list[str]] = []
            for col in term:
                kind = schema.get(col)
                if col in indexed:
                    parts.append([f"{col}_{label}" for label in indexed[col]])
                elif kind is not None and kind.kind == "number":
                    parts.append([col])
                else:
                    return None
            if len(term) == 1 and term[0] in indexed:
                slots = onehot.get(index_col[term[0]])
                if slots is None:
                    return None
                names.extend(parts[0][:slots])
                continue
            combos = [""]
            for part in parts:
                combos = [f"{c}:{p}" if c else p for c in combos for p in part]
            names.extend(combos)
        return names

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self._size if self._size is not None else -1)

    def transform(self, frame: Frame) -> None:
        for stage in self.stages:
            stage.transform(frame)
        for col in self.prune:
            frame.columns.pop(col, None)

    def row(self, values: dict[str, Any]) -> bool:
        for step in self._steps:
            if not step(values):
                return False
        for col in self.prune:
            values.pop(col, None)
        return True

    def row_step(self) -> RowStep | None:
        steps = [s.row_step() for s in self.stages]
        if any(step is None for step in steps):
            return None
        self._steps: list[RowStep] = [step for step in steps if step is not None]
        return self.row

    def describe(self) -> str:
        return f"RFormulaModel('{self.formula}': {', '.join(self.inputs)} -> {self.features_col})"
