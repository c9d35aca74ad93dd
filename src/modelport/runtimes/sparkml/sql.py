"""SQLTransformer: the saved ``statement`` run by DuckDB over the frame's columns (Arrow, zero-copy where it can).

No SQL is parsed here: DuckDB parses the statement (``json_serialize_sql``), the runtime walks that
tree to check every function against the list whose Spark semantics it reproduces, rewrites the few
that differ, and hands the tree back to DuckDB (``json_deserialize_sql``). What differs from DuckDB
and is rewritten (Spark SQL semantics kept):

- ``a / b``: Spark gives null when ``b`` is 0 (Spark < 4, non-ANSI) or fails the query (Spark 4's
  ANSI default); DuckDB gives ±inf/NaN. Rewritten to a CASE on ``b = 0``.
- ``CAST(x AS INT/BIGINT/SMALLINT/TINYINT)``: Spark truncates toward zero, DuckDB rounds; rewritten to
  cast ``trunc(x)``.
- ``log(x)`` is the natural log in Spark (``log10`` in DuckDB); ``ln``/``log``/``log10``/``log2`` of
  ``x <= 0`` is null in Spark (DuckDB: -inf or an error). Rewritten.
- ``concat(a, b, ...)`` is null when any argument is null in Spark (DuckDB skips nulls); rewritten to
  ``a || b || ...``.

Refused at load (named in the error): any other function, casts to strings, dates or decimals (their
text and rounding differ), subqueries over other tables, and statements that read a vector or token
column. Numbers travel as DOUBLE with null as SQL NULL and NaN as NaN (a value in Spark SQL, which
DuckDB orders and compares as Spark does), and a NULL result comes back as null; strings travel as
VARCHAR. Results are merged back by a hidden row number, so ``WHERE`` drops rows as Spark does.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import numpy as np

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.core.signature import NULL
from modelport.runtimes.sparkml.reader import StageMeta
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, register
from modelport.runtimes.sparkml.vectors import null_mask

__all__ = ["SQLTransformer", "ALLOWED_FUNCTIONS"]

_ROW = "__modelport_row"
_PROBE = 0.6180339887498949
_THIS = "__THIS__"

ALLOWED_FUNCTIONS = frozenset(
    {
        # operators (DuckDB names them as functions in its tree)
        "+", "-", "*", "/", "%", "=", "==", "!=", "<>", "<", ">", "<=", ">=", "||", "~~", "!~~",
        # functions whose results match Spark's on doubles and strings
        "abs", "sqrt", "exp", "pow", "power", "floor", "ceil", "ceiling", "greatest", "least",
        "upper", "lower", "ucase", "lcase", "length", "trim", "ltrim", "rtrim", "coalesce", "ifnull",
        "ln", "log", "log10", "log2", "concat", "if", "signum", "sign",
    }
)  # fmt: skip

_STRING_FUNCTIONS = {"upper", "lower", "ucase", "lcase", "length", "trim", "ltrim", "rtrim", "~~", "!~~", "||"}


def _is_string(constant: dict[str, Any]) -> bool:
    literal = constant.get("literal")
    if isinstance(literal, dict):
        return str(literal.get("kind", "")).upper() == "STRING"
    value = constant.get("value")
    return isinstance(value, dict) and str((value.get("type") or {}).get("id", "")).upper() == "VARCHAR"


_INT_TYPES = {"INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "INT4", "INT8", "LONG", "SHORT", "BYTE"}
_NUM_TYPES = {"DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4"} | _INT_TYPES
_BOOL_TYPES = {"BOOLEAN", "BOOL"}


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the install
        raise ModelLoadError(
            "SQLTransformer needs DuckDB to run its statement: pip install 'modelport[sparkml]' (or duckdb)"
        ) from None
    return duckdb


class _Rewriter:
    """Walks DuckDB's JSON parse tree: collects column references, refuses and rewrites functions."""

    def __init__(self, con: Any, ansi: bool, path: str) -> None:
        self.con = con
        self.ansi = ansi
        self.path = path
        self.columns: set[str] = set()
        self.refused: list[str] = []
        self.strings: set[str] = set()  # columns the tree uses as strings (compared with a string literal, upper(c))

    def template(self, sql: str) -> dict[str, Any]:
        tree = json.loads(self.con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
        node: dict[str, Any] = tree["statements"][0]["node"]["select_list"][0]
        return node

    def fill(self, node: Any, slots: dict[str, Any]) -> Any:
        """A template with its ``__slotN__`` column references replaced by sub-trees."""
        if isinstance(node, dict):
            if node.get("class") == "COLUMN_REF" and node["column_names"][-1] in slots:
                sub = copy.deepcopy(slots[node["column_names"][-1]])
                sub["alias"] = node.get("alias", "")
                return sub
            return {k: self.fill(v, slots) for k, v in node.items()}
        if isinstance(node, list):
            return [self.fill(v, slots) for v in node]
        return node

    def hint(self, node: dict[str, Any]) -> None:
        """Note columns that the tree compares with string literals or passes to string functions."""
        cls = node.get("class")
        if cls == "COMPARISON":
            parts = [node.get("left"), node.get("right")]
        elif cls == "OPERATOR" and node.get("type") in ("COMPARE_IN", "COMPARE_NOT_IN"):
            parts = list(node.get("children") or [])
        elif cls == "FUNCTION" and str(node.get("function_name", "")).lower() in _STRING_FUNCTIONS:
            parts = [a.get("expression") if isinstance(a, dict) and "expression" in a else a for a in node["arguments"]]
            parts.append({"class": "CONSTANT", "literal": {"kind": "STRING"}})
        else:
            return
        if any(isinstance(p, dict) and p.get("class") == "CONSTANT" and _is_string(p) for p in parts):
            for p in parts:
                if isinstance(p, dict) and p.get("class") == "COLUMN_REF":
                    self.strings.add(str(p["column_names"][-1]))

    def walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        cls = node.get("class")
        if cls == "COLUMN_REF":
            self.columns.add(str(node["column_names"][-1]))
            return node
        if cls == "SUBQUERY" or node.get("type") == "SUBQUERY_NODE":
            self.refused.append("subqueries")
            return node
        node = {k: self.walk(v) for k, v in node.items()}
        self.hint(node)
        if cls == "CAST":
            name = str(node["type_expr"].get("type_name", "")).upper() if "type_expr" in node else ""
            if not name and "cast_type" in node:
                name = str(node["cast_type"].get("id", "")).upper()
            if name in _INT_TYPES:
                alias = node.get("alias", "")
                inner = self.fill(self.template("SELECT trunc(__slot0__)"), {"__slot0__": node["child"]})
                node = dict(node, child=inner, alias=alias)
            elif name not in _NUM_TYPES | _BOOL_TYPES:
                self.refused.append(f"CAST to {name or 'this type'}")
            return node
        if cls == "FUNCTION":
            fn = str(node["function_name"]).lower()
            args = [a["expression"] if isinstance(a, dict) and "expression" in a else a for a in node["arguments"]]
            if fn not in ALLOWED_FUNCTIONS:
                self.refused.append(f"function {node['function_name']}")
                return node
            alias = node.get("alias", "")
            out = node
            if fn in ("/", "%") and len(args) == 2:
                fail = "error('DIVIDE_BY_ZERO: division by zero (Spark SQL ANSI mode)')" if self.ansi else "NULL"
                tpl = self.template(f"SELECT CASE WHEN __slot1__ = 0 THEN {fail} ELSE __slot0__ {fn} __slot1__ END")
                out = self.fill(tpl, {"__slot0__": args[0], "__slot1__": args[1]})
            elif fn in ("ln", "log", "log10", "log2") and len(args) == 1:
                target = "ln" if fn == "log" else fn
                tpl = self.template(f"SELECT CASE WHEN __slot0__ <= 0 THEN NULL ELSE {target}(__slot0__) END")
                out = self.fill(tpl, {"__slot0__": args[0]})
            elif fn == "log" and len(args) == 2:
                tpl = self.template(
                    "SELECT CASE WHEN __slot0__ <= 0 OR __slot1__ <= 0 THEN NULL ELSE log(__slot0__, __slot1__) END"
                )
                out = self.fill(tpl, {"__slot0__": args[0], "__slot1__": args[1]})
            elif fn == "concat":
                slots = {f"__slot{i}__": a for i, a in enumerate(args)}
                expr = " || ".join(f"CAST(__slot{i}__ AS VARCHAR)" for i in range(len(args))) or "''"
                out = self.fill(self.template(f"SELECT {expr}"), slots)
            out["alias"] = alias
            return out
        return node


@register
class SQLTransformer(Stage):
    """``statement`` over ``__THIS__``: new or replaced columns are the stage's outputs."""

    spark_classes = ("org.apache.spark.ml.feature.SQLTransformer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        statement = meta.get("statement")
        if not statement:
            raise ModelLoadError(f"{meta.path}: SQLTransformer has no statement")
        self.statement = str(statement)
        self.name = f"SQLTransformer ({meta.uid})"
        duckdb = _duckdb()
        self._con = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        ansi = meta.spark_version >= (4, 0)
        parsed = json.loads(self._con.execute("SELECT json_serialize_sql(?)", [self.statement]).fetchone()[0])
        if parsed.get("error"):
            raise ModelLoadError(f"{meta.path}: SQLTransformer statement does not parse: {parsed.get('error_message')}")
        statements = parsed.get("statements") or []
        if len(statements) != 1 or statements[0]["node"].get("type") != "SELECT_NODE":
            raise ModelLoadError(f"{meta.path}: SQLTransformer statement must be one SELECT ... FROM __THIS__")
        node = statements[0]["node"]
        table = node.get("from_table") or {}
        if table.get("type") != "BASE_TABLE" or str(table.get("table_name", "")).upper() != _THIS:
            raise ModelLoadError(
                f"{meta.path}: SQLTransformer reads only from __THIS__ here (statement: {self.statement})"
            )
        if node.get("group_expressions") or node.get("aggregate_handling") not in (None, "STANDARD_HANDLING"):
            raise ModelLoadError(f"{meta.path}: SQLTransformer with GROUP BY is not supported")
        rewriter = _Rewriter(self._con, ansi, str(meta.path))
        node = rewriter.walk(node)
        if rewriter.refused:
            raise ModelLoadError(
                f"{meta.path}: SQLTransformer statement uses {', '.join(sorted(set(rewriter.refused)))}, whose Spark "
                f"semantics the runtime does not reproduce; supported: column arithmetic, comparisons, AND/OR/NOT, "
                f"CASE, IN, BETWEEN, IS NULL, numeric casts and the functions "
                f"{', '.join(sorted(f for f in ALLOWED_FUNCTIONS if f.isalpha()))}"
            )
        statements[0]["node"] = node
        self.sql = str(self._con.execute("SELECT json_deserialize_sql(?)", [json.dumps(parsed)]).fetchone()[0])
        self.reads = sorted(rewriter.columns - {_ROW})
        self.string_hints = rewriter.strings
        # Columns the statement computes (aliased expressions); `*` and plain column references pass through.
        self.computed = [
            str(item.get("alias") or "")
            for item in node["select_list"]
            if item.get("class") not in ("STAR", "COLUMN_REF")
            or (item.get("class") == "COLUMN_REF" and item.get("alias") not in ("", item["column_names"][-1]))
        ]
        if "" in self.computed:
            raise ModelLoadError(
                f"{meta.path}: every computed column of a SQLTransformer statement needs a name (expr AS name) here"
            )
        self.out_types: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.source_types = self._source_types()

    def _source_types(self) -> dict[str, str]:
        """How each column the statement reads is typed when it is a pipeline input: DOUBLE, unless the statement
        only runs with it as VARCHAR (compared with a string literal, passed to upper(), ...); DuckDB decides,
        one column at a time, on a one-row probe."""
        numbers = {c: "string" if c in self.string_hints else "number" for c in self.reads}
        error: Exception | None = None
        for flips in [[], *([c] for c in self.reads if c not in self.string_hints), self.reads]:
            trial = dict(numbers, **dict.fromkeys(flips, "string"))
            try:
                self._describe(trial)
            except Exception as exc:  # the first message is kept for the load error
                error = error or exc
                continue
            return {c: ("BYTES" if k == "string" else "FP64") for c, k in trial.items()}
        raise ModelLoadError(f"{self.meta.path}: SQLTransformer statement does not bind: {error}")

    @property
    def inputs(self) -> list[str]:
        return list(self.reads)

    @property
    def outputs(self) -> list[str]:
        return list(self.computed)

    def input_datatype(self, column: str) -> str:
        return self.source_types.get(column, "FP64")

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return ("BYTES" if self.out_types.get(column) == "VARCHAR" else "FP64"), (-1,)

    def _probe(self, kinds: dict[str, str]) -> Any:
        """A one-row table (an irrational-looking number, 'a' for strings): running on it makes DuckDB cast literals."""
        import pyarrow as pa

        cols: dict[str, Any] = {c: pa.array(["a"] if k == "string" else [_PROBE]) for c, k in kinds.items()}
        cols[_ROW] = pa.array([0], type=pa.int64())
        return pa.table(cols)

    def _describe(self, kinds: dict[str, str]) -> list[tuple[str, str]]:
        cur = self._con.cursor()
        try:
            cur.register(_THIS, self._probe(kinds))
            try:
                cur.execute(self.sql).fetchall()
            except Exception as exc:
                if "DIVIDE_BY_ZERO" not in str(exc):  # the probe value itself may divide by zero: not a typing error
                    raise
            rel = cur.execute(f"DESCRIBE {self.sql}").fetchall()
        finally:
            cur.close()
        return [(str(r[0]), str(r[1]).upper()) for r in rel]

    def setup(self, schema: Schema) -> None:
        kinds: dict[str, str] = {}
        for col in self.reads:
            info = schema.get(col)
            if info is not None and info.kind in ("vector", "tokens"):
                raise ModelLoadError(
                    f"{self.meta.path}: SQLTransformer reads the {info.kind} column '{col}'; only number and string "
                    "columns go through SQL here"
                )
            kinds[col] = "string" if info is not None and info.kind == "string" else "number"
        for col, info in schema.items():
            if col not in kinds and info.kind in ("number", "string"):
                kinds[col] = info.kind
        try:
            described = self._describe(kinds)
        except Exception as exc:  # DuckDB's binder names the problem
            raise ModelLoadError(f"{self.meta.path}: SQLTransformer statement does not bind: {exc}") from None
        self.kinds = kinds
        self.out_types = {name: t for name, t in described if name != _ROW}
        for name in self.computed:
            t = self.out_types[name]
            schema[name] = ColumnInfo("string" if t == "VARCHAR" else "number", attrs=((name, 0),))

    def transform(self, frame: Frame) -> None:
        import pyarrow as pa

        cols: dict[str, Any] = {}
        for col, kind in self.kinds.items():
            if col not in frame:
                continue
            value = frame[col]
            if kind == "string":
                cols[col] = pa.array(
                    [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in value],
                    type=pa.string(),
                )
            else:
                arr = np.asarray(value, dtype=np.float64)
                cols[col] = pa.array(arr, mask=null_mask(arr), type=pa.float64())  # NaN is a value in Spark SQL
        cols[_ROW] = pa.array(np.arange(frame.n, dtype=np.int64))
        table = pa.table(cols)
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.register(_THIS, table)
            result = _arrow(cur.sql(self.sql))
        except Exception as exc:
            raise InvalidInput(f"Spark ML stage {self.name}: the SQL statement failed on this input: {exc}") from None
        finally:
            cur.close()
        if _ROW in result.column_names:
            rows = result.column(_ROW).to_numpy()
            if len(rows) != frame.n or (rows != np.arange(frame.n)).any():
                keep = np.zeros(frame.n, dtype=bool)
                keep[rows] = True
                if (np.sort(rows) != rows).any() or len(np.unique(rows)) != len(rows):
                    raise InvalidInput(f"Spark ML stage {self.name}: the statement reorders or repeats rows")
                frame.filter(keep)
        elif result.num_rows != frame.n:
            raise InvalidInput(
                f"Spark ML stage {self.name}: the statement returned {result.num_rows} rows for {frame.n}; "
                "a statement that drops rows must keep the input columns (SELECT *)"
            )
        for name in self.outputs:
            col = result.column(name)
            if self.out_types[name] == "VARCHAR":
                arr = np.empty(len(col), dtype=object)
                arr[:] = col.to_pylist()
                frame[name] = arr
            else:
                # SQL NULL is Spark's null (x / 0 before Spark 4, log(0)), not a NaN Spark computed
                frame[name] = np.array([NULL if v is None else float(v) for v in col.to_pylist()], dtype=np.float64)

    def describe(self) -> str:
        return f"SQLTransformer({', '.join(self.reads)} -> {', '.join(self.outputs)}; {self.statement})"


def _arrow(relation: Any) -> Any:
    """A DuckDB relation as a pyarrow Table (``to_arrow_table`` in DuckDB 1.4+, ``arrow`` before)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()
