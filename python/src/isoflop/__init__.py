"""isoflop: compute-optimal scaling laws in Python.

Fit Chinchilla's three approaches (the envelope of training curves, IsoFLOP parabolas, the
parametric law L(N, D) = E + A/N^alpha + B/D^beta) to runs in a pandas DataFrame, a dict of
arrays or a file; allocate a budget; draw the paper's figures. The engine is isoflop's Rust
core (the same reader, fits and JSON as the ``isoflop`` command); libtorch is never loaded.

    >>> import isoflop
    >>> fit = isoflop.fit(df, drop_top=5, boot=1000, budgets="chinchilla", seed=0)
    >>> fit.allocate(flops=5.76e23)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _isoflop

from .recorder import Interrupted, Recorder, RunHeld

__all__ = ["fit", "Fit", "Law", "InputError", "Figure", "read_table", "import_runs", "count",
           "Recorder", "RunHeld", "Interrupted", "__version__"]
__version__ = _isoflop.__version__


class InputError(ValueError):
    """Bad input: a table that cannot be read (naming its row and column, or its file's line
    and column), or an option out of range. The message is the command line's."""


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "to_dict")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return repr(v)
    if isinstance(v, (np.floating,)):
        f = float(v)
        return "NaN" if math.isnan(f) else repr(f)
    return str(v)


def _table(data: Any) -> "tuple[str, str, Optional[List[Any]]]":
    """(CSV text, source name, row labels where the rows have them) of a table given as a
    DataFrame, a mapping of column name to array, or a path (a CSV or JSON Lines file, or a
    folder of run folders)."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return "", path, None
    if _is_dataframe(data):
        columns = [str(c) for c in data.columns]
        rows = data.itertuples(index=False, name=None)
        labels = list(data.index)
        source = "DataFrame"
    elif isinstance(data, Mapping):
        columns = [str(c) for c in data.keys()]
        arrays = [list(np.asarray(v).tolist()) if not isinstance(v, list) else v for v in data.values()]
        lengths = {len(a) for a in arrays}
        if len(lengths) > 1:
            raise InputError(f"dict of arrays: the columns have different lengths {sorted(lengths)}")
        rows = zip(*arrays)
        labels = None
        source = "dict"
    else:
        raise InputError(
            f"give a pandas DataFrame, a dict of arrays or a path, not {type(data).__name__}"
        )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return buf.getvalue(), source, labels


_LINE = re.compile(r"^(DataFrame|dict):(\d+): ")


def _input_error(e: ValueError, labels: Optional[List[Any]]) -> InputError:
    """The Rust reader names CSV lines; a DataFrame's or dict's rows are named instead
    (line 2 is row 0), with the DataFrame's index label."""
    msg = str(e)
    m = _LINE.match(msg)
    if m:
        row = int(m.group(2)) - 2
        label = ""
        if labels is not None and 0 <= row < len(labels):
            label = f" (index {labels[row]!r})"
        msg = f"{m.group(1)} row {row}{label}: " + msg[m.end():]
    return InputError(msg)


def _read(data: Any) -> "tuple[str, str, Optional[List[Any]]]":
    """A path is passed on as it is (empty text): the Rust side reads it with the command
    line's own reader, so a file or a run folder reaches the fit exactly as in `isoflop fit`."""
    text, source, labels = _table(data)
    if text == "" and not os.path.exists(source):
        raise InputError(f"{source}: no such file or folder")
    return text, source, labels


class _Namespace:
    """Attribute access to a JSON object, with its dict at ``.to_dict()``."""

    def __init__(self, d: Mapping[str, Any]):
        self._d = dict(d)

    def __getattr__(self, k: str) -> Any:
        try:
            v = self._d[k]
        except KeyError:
            raise AttributeError(k) from None
        return _Namespace(v) if isinstance(v, Mapping) else v

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._d)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._d!r})"


class Approach3(_Namespace):
    """Approach 3's fit: ``.law`` (E, A, B, alpha, beta), ``.intervals``, ``.diagnostics``,
    ``.converged``."""

    @property
    def law(self) -> "Law":
        """Approach 3's fitted law, with its bootstrap samples (see :meth:`Law.intervals`)."""
        l = self._d["law"]
        return Law({"source": "fitted", "approach3": {"estimate": l, "samples": self._d.get("samples", [])}})

    @property
    def converged(self) -> bool:
        """Whether the best start converged under the documented stopping rules."""
        return bool(self._d["diagnostics"]["converged"])


class Figure:
    """A figure as SVG text; Jupyter shows it inline."""

    def __init__(self, name: str, svg: str):
        self.name = name
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __repr__(self) -> str:
        return f"Figure({self.name!r}, {len(self.svg)} bytes of SVG)"


def _allocations(laws_json: str, level: float, **target: float) -> Any:
    given = {k: v for k, v in target.items() if v is not None}
    if len(given) != 1:
        raise InputError("give exactly one of flops=, params=, loss=")
    (kind, value), = given.items()
    try:
        rows = json.loads(_isoflop.allocate(laws_json, kind, float(value), level))
    except ValueError as e:
        raise InputError(str(e)) from None
    flat = []
    for a in rows:
        r = {k: a[k] for k in ("approach", "flops", "params", "tokens", "tokens_6nd", "tokens_per_param", "loss")}
        iv = a.get("intervals") or {}
        for q in ("params", "tokens", "flops", "loss"):
            if iv.get(q):
                r[f"{q}_lo"], r[f"{q}_hi"] = iv[q]["lo"], iv[q]["hi"]
        p = a.get("loss_prediction")
        if p:
            r["loss_prediction_lo"], r["loss_prediction_hi"] = p["lo"], p["hi"]
        flat.append(r)
    try:
        import pandas as pd  # optional

        return pd.DataFrame(flat)
    except ImportError:
        return flat


class Law:
    """A set of laws (what ``isoflop fit --out`` writes): Approach 3's parametric law, the
    frontiers of Approaches 1 and 2, their bootstrap samples."""

    def __init__(self, d: Mapping[str, Any]):
        self._d = dict(d)

    @classmethod
    def preset(cls, name: str) -> "Law":
        """A published law: ``chinchilla``, ``chinchilla-unrounded``, ``epoch``,
        ``muennighoff2023``, ``kaplan2020``."""
        try:
            return cls(json.loads(_isoflop.preset(name)))
        except ValueError as e:
            raise InputError(str(e)) from None

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Law":
        """A law file written by ``isoflop fit --out`` or :meth:`Fit.save`, checked as the
        command line checks it (every parameter finite, E, A, B and the exponents positive,
        a format this version reads); else :class:`InputError` naming the file and field."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            _isoflop.check_laws(text, os.fspath(path))
        except ValueError as e:
            raise InputError(str(e)) from None
        return cls(json.loads(text))

    @property
    def E(self) -> float:
        """The irreducible loss E of L(N, D) = E + A/N^alpha + B/D^beta (nats per token)."""
        return self._param("E")

    @property
    def A(self) -> float:
        """The coefficient A of the parameters' term A/N^alpha."""
        return self._param("A")

    @property
    def B(self) -> float:
        """The coefficient B of the tokens' term B/D^beta."""
        return self._param("B")

    @property
    def alpha(self) -> float:
        """The parameters' exponent alpha."""
        return self._param("alpha")

    @property
    def beta(self) -> float:
        """The tokens' exponent beta."""
        return self._param("beta")

    def _param(self, k: str) -> float:
        a3 = self._d.get("approach3")
        if not a3:
            raise AttributeError(f"this law set has no Approach 3 law (no {k})")
        return float(a3["estimate"][k])

    def allocate(self, flops: Optional[float] = None, params: Optional[float] = None,
                 loss: Optional[float] = None, level: float = 0.95) -> Any:
        """The optimal parameters, tokens and loss for one target, by each law: a
        DataFrame (a list of dicts without pandas), with interval columns where the law has
        bootstrap samples."""
        return _allocations(json.dumps(self._d), level, flops=flops, params=params, loss=loss)

    def predict_loss(self, params: Any, tokens: Any) -> np.ndarray:
        """Approach 3's L(N, D), vectorised over arrays of N and D."""
        n = np.asarray(params, dtype=float)
        d = np.asarray(tokens, dtype=float)
        return self.E + self.A / n ** self.alpha + self.B / d ** self.beta

    def to_dict(self) -> Dict[str, Any]:
        """The law set as the JSON object ``isoflop fit --out`` writes."""
        return dict(self._d)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the law file ``isoflop allocate --law`` reads."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self._d, f, indent=2)

    def intervals(self, level: float = 0.95) -> Optional[Dict[str, Any]]:
        """Approach 3's parameters' intervals: ``{"source": ..., "intervals": {"E": {"lo",
        "hi", "level"}, "A", "B", "alpha", "beta"}}``, percentile intervals over the law's
        bootstrap samples (the fit's own), else a preset's published 95% intervals; ``None``
        where the law has neither."""
        try:
            return json.loads(_isoflop.law_intervals(json.dumps(self._d), float(level)))
        except ValueError as e:
            raise InputError(str(e)) from None

    def __repr__(self) -> str:
        a3 = self._d.get("approach3")
        if a3:
            l = a3["estimate"]
            got = self.intervals() or {}
            iv = got.get("intervals", {})
            fmt = {"E": ".4f", "A": ".1f", "B": ".1f", "alpha": ".4f", "beta": ".4f"}

            def one(k: str) -> str:
                s = f"{k}={l[k]:{fmt[k]}}"
                if k in iv:
                    s += f" ({iv[k]['lo']:{fmt[k]}} to {iv[k]['hi']:{fmt[k]}})"
                return s

            tail = f"; 95% intervals from {got['source']}" if iv else ""
            return "Law(" + ", ".join(one(k) for k in fmt) + tail + ")"
        return f"Law({self._d.get('source', '')!r})"


class Fit:
    """The result of :func:`fit`: the three approaches, the laws, allocation, figures. Its
    ``to_dict()`` is the JSON of ``isoflop fit --json``."""

    def __init__(self, report: Dict[str, Any], laws: Dict[str, Any], warnings: List[str], table: "tuple[str, str, Optional[List[Any]]]", options: str):
        self._r = report
        self._warnings = warnings
        self._laws = Law(laws)
        self._table = table
        self._options = options

    @property
    def approach1(self) -> Optional[_Namespace]:
        """Approach 1 (the training-curve envelope), or ``None`` where it was skipped (the reason is in ``to_dict()``)."""
        return self._approach("approach1", _Namespace)

    @property
    def approach2(self) -> Optional[_Namespace]:
        """Approach 2 (IsoFLOP parabolas), or ``None`` where it was skipped."""
        return self._approach("approach2", _Namespace)

    @property
    def approach3(self) -> Optional[Approach3]:
        """Approach 3 (the parametric law), or ``None`` where it was skipped."""
        return self._approach("approach3", Approach3)

    def _approach(self, k: str, cls: Any) -> Any:
        o = self._r.get(k)
        if isinstance(o, dict) and "fitted" in o:
            return cls(o["fitted"])
        return None

    @property
    def warnings(self) -> List[str]:
        """Every warning of the fit, as ``isoflop fit`` prints them (non-convergence is
        reported here, never raised)."""
        return list(self._warnings)

    @property
    def laws(self) -> Law:
        """The laws, as :meth:`save` writes them."""
        return self._laws

    def allocate(self, flops: Optional[float] = None, params: Optional[float] = None,
                 loss: Optional[float] = None, level: float = 0.95) -> Any:
        """The optimal model for a target by each approach (see :meth:`Law.allocate`)."""
        return self._laws.allocate(flops=flops, params=params, loss=loss, level=level)

    def predict_loss(self, params: Any, tokens: Any) -> np.ndarray:
        """Approach 3's L(N, D), vectorised."""
        return self._laws.predict_loss(params, tokens)

    def figures(self, target_flops: Optional[float] = None) -> Dict[str, Figure]:
        """The figures this fit supports, by short name (``training_curves``,
        ``projections``, ``isoloss``, ``isoflop_slices``; ``law_forms`` and ``repetition``
        where other law forms were fitted), each a :class:`Figure` (SVG).
        ``target_flops``: where to project (default: 100x the largest run's FLOPs)."""
        text, source, _ = self._table
        if target_flops is None:
            rng = self._r.get("flops_range") or [1.0, 1.0]
            target_flops = 100.0 * float(rng[1])
        try:
            figs = _isoflop.figures(json.dumps(self._r), text, source, float(target_flops), self._options)
        except ValueError as e:
            raise InputError(str(e)) from None
        out = {}
        for name, svg, _why in figs:
            if svg is not None:
                out[re.sub(r"^fig\d+_", "", name)] = Figure(name, svg)
        return out

    def to_dict(self) -> Dict[str, Any]:
        """The report as the JSON object ``isoflop fit --json`` prints."""
        return json.loads(json.dumps(self._r))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the law file (as ``isoflop fit --out``)."""
        self._laws.save(path)

    def _repr_html_(self) -> str:
        rows = []
        for k, name in (("approach1", "1: envelope"), ("approach2", "2: IsoFLOP"), ("approach3", "3: parametric")):
            o = self._r.get(k)
            if isinstance(o, dict) and "fitted" in o:
                f = o["fitted"]
                a = f["params_exponent"] if k == "approach3" else f["frontier"]["params_exponent"]
                iv = (f.get("intervals") or {}).get("params_exponent")
                ivs = f" [{iv['lo']:.3f}, {iv['hi']:.3f}]" if iv else ""
                rows.append(f"<tr><td>Approach {name}</td><td>{a:.4f}{ivs}</td></tr>")
            else:
                why = o.get("skipped", "not requested") if isinstance(o, dict) else "not requested"
                rows.append(f"<tr><td>Approach {name}</td><td>{_esc(str(why))}</td></tr>")
        law = ""
        a3 = self.approach3
        if a3 is not None:
            l = a3.to_dict()["law"]
            law = f"<p>L(N, D) = {l['E']:.4f} + {l['A']:.1f}/N^{l['alpha']:.4f} + {l['B']:.1f}/D^{l['beta']:.4f}</p>"
        warn = "".join(f"<li>{_esc(w)}</li>" for w in self.warnings)
        return (
            f"<div><b>isoflop fit</b>: {self._r['runs']} runs of {_esc(str(self._r['source']))}"
            f"<table><tr><th>approach</th><th>a (N_opt ~ C^a)</th></tr>{''.join(rows)}</table>{law}"
            f"{'<ul>' + warn + '</ul>' if warn else ''}</div>"
        )

    def __repr__(self) -> str:
        a3 = self.approach3
        return f"Fit({self._r['runs']} runs; Approach 3: {a3.law if a3 else 'not fitted'})"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(data: Any, drop_top: Optional[int] = None, boot: Optional[int] = None,
        seed: Optional[int] = None,
        budgets: Optional[Union[str, Sequence[float]]] = None,
        budget_tol: Optional[float] = None,
        approaches: Optional[Iterable[int]] = None, delta: Optional[float] = None,
        loss_column: Optional[str] = None,
        laws: Optional[Union[str, Iterable[str]]] = None, boot_by: Optional[str] = None,
        params_column: Optional[str] = None, flops_column: Optional[str] = None,
        loss_unit: Optional[str] = None, bytes_per_token: Optional[Union[float, str]] = None,
        tokens_column: Optional[str] = None, solver: Optional[str] = None) -> Fit:
    """Fits Chinchilla's three approaches to runs, and other law forms where ``laws`` names
    them (``"chinchilla"``, ``"data-constrained"``, ``"kaplan"``, as ``isoflop fit --law``;
    the data-constrained law needs a ``unique_tokens``/``U`` column). With two forms or
    more, ``Fit.to_dict()["comparison"]`` scores each on the runs and ``["held_out"]`` on
    runs held out of its refit.

    Every option is ``isoflop fit``'s of the same name (``approaches`` is ``--approach``,
    ``laws`` is ``--law``), and one left out (or ``None``) takes the command line's default:
    the defaults are written once, in the Rust side's ``FitSpec``.

    ``data``: a pandas DataFrame, a dict of column name to array, or a path to a CSV or JSON
    Lines file or to a folder of run folders (read as ``isoflop fit`` reads them). Columns as the command line reads them (``params``/``N``, ``tokens``/``D``,
    ``flops``/``C``, ``loss``/``val_loss``; optional ``run``, ``step``, ``budget``).
    ``boot``: bootstrap resamples (0 for none); ``seed`` their seed.
    ``budgets``: ``"chinchilla"`` (the paper's nine) or a list of FLOPs for Approach 2,
    ``budget_tol`` its tolerance in decades; ``delta``: Approach 3's Huber delta;
    ``drop_top``: the highest-loss runs left out of Approaches 2 and 3; ``solver``: how
    Approach 3 searches, ``"lbfgs"`` (the paper's 4,500 starts) or ``"vpnls"`` (variable
    projection, no starts), as ``isoflop fit --solver``.
    ``boot_by``: what a bootstrap resample draws, ``"run"`` (each run on its own, as the
    paper and Epoch do) or ``"size"`` (each model size with all its runs), as
    ``isoflop fit --boot-by``.
    ``params_column``/``tokens_column``/``flops_column`` choose the counting convention
    (``isoflop fit --params-column``, e.g. ``params_no_embed`` and ``flops_kaplan`` of an
    import); ``loss_unit`` (``"nats"`` or ``"bits"`` per token) and ``bytes_per_token`` (a
    number or a column: losses in bits per byte) as ``--loss-unit`` and
    ``--bytes-per-token``; the report's ``counted`` names the columns and the unit.
    Raises :class:`InputError` naming the row and column of bad input; non-convergence is
    reported in the result (``Fit.warnings``, ``approach3.converged``), never raised. The fit
    releases the GIL and uses every core."""
    table = _read(data)
    text, source, labels = table
    if isinstance(budgets, (list, tuple)):
        budgets = ",".join(repr(float(b)) for b in budgets)
    if isinstance(laws, str):
        laws = laws.split(",")
    def opt(x, conv):
        return None if x is None else conv(x)

    given = {
        "drop_top": opt(drop_top, int), "boot": opt(boot, int), "seed": opt(seed, int),
        "budgets": budgets, "budget_tol": opt(budget_tol, float),
        "approach": opt(approaches, lambda a: [int(k) for k in a]),
        "delta": opt(delta, float), "laws": opt(laws, lambda l: [str(f) for f in l]),
        "boot_by": opt(boot_by, str), "loss_column": loss_column,
        "params_column": params_column, "tokens_column": tokens_column,
        "flops_column": flops_column, "loss_unit": opt(loss_unit, str),
        "bytes_per_token": opt(bytes_per_token, str), "solver": opt(solver, str),
    }
    # Options left out are left out of the JSON: the Rust side's defaults fill them.
    options = json.dumps({k: v for k, v in given.items() if v is not None})
    try:
        report, laws_json, warnings = _isoflop.fit(text, source, options)
    except ValueError as e:
        raise _input_error(e, labels) from None
    return Fit(json.loads(report), json.loads(laws_json), json.loads(warnings), table, options)


_IMPORT_OPTIONS = ("format", "loss_key", "eval_loss_key", "step_key", "tokens_key", "lr_key",
                   "run_key", "params", "params_key", "model_config", "context",
                   "tokens_per_step", "total_steps")


def import_runs(sources: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
                out: Optional[Union[str, os.PathLike]] = None,
                table: Optional[Union[str, os.PathLike]] = None,
                skip_bad: bool = False, force: bool = False, **options: Any) -> Dict[str, Any]:
    """``isoflop import``, through the same Rust code: reads W&B run folders and CSV exports,
    TensorBoard event files, ``trainer_state.json``, JSON Lines and CSV logs, and writes one
    run record per run into ``out`` (or one run table, ``table``). Options are the command
    line's, in snake case: ``loss_key``, ``eval_loss_key``, ``step_key``, ``tokens_key``,
    ``lr_key``, ``run_key``, ``params``, ``params_key``, ``model_config``, ``context``,
    ``tokens_per_step``, ``total_steps``, ``format``. Returns the report: each run with
    ``name``, ``written_as``, ``format``, ``source``, ``rows``, ``finished`` and
    ``final_loss``; ``skipped`` and ``warnings``. Raises InputError naming the file and
    line, record or byte offset of a bad source (nothing is written then)."""
    unknown = sorted(set(options) - set(_IMPORT_OPTIONS))
    if unknown:
        raise TypeError(f"import_runs: unknown options {unknown}; known: {list(_IMPORT_OPTIONS)}")
    if (out is None) == (table is None):
        raise InputError("import_runs: give out (a folder of run records) or table (a CSV file)")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    opts = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in options.items()
            if v is not None}
    try:
        text = _isoflop.import_runs([os.fspath(s) for s in sources],
                                    None if out is None else os.fspath(out),
                                    None if table is None else os.fspath(table),
                                    json.dumps(opts), skip_bad, force)
    except ValueError as e:
        raise InputError(str(e)) from None
    return json.loads(text)


def count(config: Union[str, os.PathLike], context: Optional[int] = None) -> Dict[str, Any]:
    """``isoflop count``: the architecture a model config describes (a Hugging Face
    ``config.json``: gpt2, llama, mistral, mixtral, qwen2; or an isoflop run's) and its
    counts: ``count["params"]`` (``total``, ``non_embedding``, ``active``, by component)
    and ``count["flops_per_token"]`` (``six_n``, ``kaplan``, ``chinchilla``, ``deepseek``)."""
    try:
        return json.loads(_isoflop.count(os.fspath(config), context))
    except ValueError as e:
        raise InputError(str(e)) from None


def read_table(path: Union[str, os.PathLike]) -> Any:
    """The rows ``isoflop fit`` would read from ``path`` (a CSV or JSON Lines table, or a
    folder of run folders: each finished run's curve, its final loss from its summary, its
    planned budget), by the command line's one reader: a DataFrame with columns
    ``run, step, params, tokens, flops, loss, budget, final_loss`` (a dict of lists without
    pandas). Runs left out (unfinished, failed) are named in ``.attrs["notes"]`` (the
    dict's ``"notes"``)."""
    try:
        text, notes = _isoflop.read_table(os.fspath(path))
    except ValueError as e:
        raise InputError(str(e)) from None
    rows = list(csv.DictReader(io.StringIO(text)))
    cols: Dict[str, List[Any]] = {k: [] for k in (rows[0].keys() if rows else [])}
    for r in rows:
        for k, v in r.items():
            if k == "run":
                cols[k].append(v)
            else:
                cols[k].append(float(v) if v != "" else math.nan)
    try:
        import pandas as pd
    except ImportError:
        cols["notes"] = list(notes)  # type: ignore[assignment]
        return cols
    df = pd.DataFrame(cols)
    df.attrs["notes"] = list(notes)
    return df
