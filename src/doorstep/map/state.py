"""The matcher's state on disk: the fitted model and every scored pair, as Parquet and JSON.

A full map writes it; an incremental map reads it, scores only the partner records that changed
with the same model, and writes it back. It lives in the workspace (`.doorstep/map/`), is
replaced whole (written beside, then renamed), and is thrown away, never trusted, when it is
from another version of the matcher or unreadable: the next map is then a full one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, overload

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from doorstep.map.fit import Fitted, NameModel
from doorstep.map.matcher import PAIR_SCHEMA, MatchState
from doorstep.map.params import MatchParams
from doorstep.map.profiles import NameProfile, TokenStats, profile
from doorstep.map.records import FieldStats, Side

# Bump when what the state holds, or what its numbers mean, changes.
STATE_VERSION = 1
# The subfolder an incremental map rewrites: scored pairs, right records seen, explanations.
SCORED = "scored"


class _Profiles(Sequence[NameProfile]):
    """Our names' profiles, each built from its name when first asked for."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.made: dict[int, NameProfile] = {}

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, i: int) -> NameProfile: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[NameProfile]: ...

    def __getitem__(self, i: int | slice) -> NameProfile | Sequence[NameProfile]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        found = self.made.get(i)
        if found is None:
            found = self.made[i] = profile(self.texts[i])
        return found


class _Members(Sequence[list[str]]):
    """Our account ids of each of our records, taken out only for the records asked for."""

    def __init__(self, ids: pa.Array, record: Any, records: int) -> None:
        order = np.argsort(record, kind="stable")
        self.ids = ids.take(pa.array(order))
        self.starts = np.searchsorted(np.asarray(record)[order], np.arange(records + 1))

    def __len__(self) -> int:
        return len(self.starts) - 1

    @overload
    def __getitem__(self, i: int) -> list[str]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[list[str]]: ...

    def __getitem__(self, i: int | slice) -> list[str] | Sequence[list[str]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start, stop = int(self.starts[i]), int(self.starts[i + 1])
        values: list[str] = self.ids.slice(start, stop - start).to_pylist()
        return values


def _profile_texts(side: Side) -> list[str]:
    """Return, per name profile, the name that made it (its first record's)."""
    texts: list[str | None] = [None] * len(side.profiles)
    for rec, pid in enumerate(side.name_pid.tolist()):
        if texts[pid] is None:
            texts[pid] = side.text[rec]
    return [t or "" for t in texts]


def _floats(values: Any) -> list[float]:
    return [float(x) for x in np.asarray(values, np.float64)]


def _write_scored(state: MatchState, folder: Path, model_id: str) -> None:
    folder.mkdir()
    pq.write_table(state.pairs, folder / "pairs.parquet")
    pq.write_table(pa.table({"rkey": state.right_keys}), folder / "right.parquet")
    pq.write_table(state.explained, folder / "explained.parquet")
    stamp = {"model_id": model_id, "changed_since_fit": state.changed_since_fit}
    (folder / "stamp.json").write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def _swap(new: Path, folder: Path) -> None:
    """Put folder `new` in the place of `folder`; a crash midway leaves no `folder`, never a
    mix of old and new."""
    olds = []
    for _attempt in range(10):
        old = folder.with_name(f"{folder.name}.old-{uuid.uuid4().hex}")
        with contextlib.suppress(FileNotFoundError):  # another map may have moved it first
            os.replace(folder, old)
            olds.append(old)
        try:
            os.replace(new, folder)
            break
        except OSError:  # another map put its own in meanwhile: move that aside too
            continue
    else:
        shutil.rmtree(new, ignore_errors=True)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def save_scored(state: MatchState, folder: Path) -> None:
    """Write only what an incremental map changed (the scored pairs) beside the saved model."""
    model_id = json.loads((folder / "state.json").read_text(encoding="utf-8"))["model_id"]
    tmp = folder / f"{SCORED}.writing-{uuid.uuid4().hex}"
    _write_scored(state, tmp, model_id)
    _swap(tmp, folder / SCORED)


def save_state(state: MatchState, folder: Path, fingerprint: str) -> None:
    """Write `state` to `folder` (replacing what is there), tagged with the inputs' fingerprint."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own: two maps at once each write theirs, and the last one in stays
    tmp = folder.with_name(f"{folder.name}.writing-{uuid.uuid4().hex}")
    tmp.mkdir()
    left = state.left
    model = state.fitted.model
    table, constants = state.fields.to_tables()
    model_id = uuid.uuid4().hex
    meta = {
        "version": STATE_VERSION,
        "model_id": model_id,
        "fingerprint": fingerprint,
        "fitted_records": state.fitted_records,
        "params": asdict(state.params),
        "groups": state.groups,
        "n": state.stats.n,
        "m": {f: _floats(v) for f, v in model.m.items()},
        "u": {f: _floats(v) for f, v in model.u.items()},
        "matches": model.matches,
        "web_log_ratios": _floats(state.fitted.web_log_ratios),
        "group_prior": _floats(state.fitted.group_prior),
        "group_cap": _floats(state.fitted.group_cap),
        "fields": constants,
    }
    pq.write_table(table, tmp / "fields.parquet")
    pq.write_table(pa.table({"word": list(state.stats.df),
                             "df": pa.array(list(state.stats.df.values()), pa.int64())}),
                   tmp / "words.parquet")
    pq.write_table(_table(state.counts), tmp / "counts.parquet")
    pq.write_table(_table(state.left_keys), tmp / "left_keys.parquet")
    _write_scored(state, tmp / SCORED, model_id)
    pq.write_table(pa.table({
        "name_pid": pa.array(left.name_pid, pa.int64()),
        "country": pa.array(left.country, pa.string()),
        "domain": pa.array(left.domain, pa.string()),
        "hint": pa.array(left.hint, pa.string()),
        "cluster": pa.array(left.cluster, pa.string()),
        "text": pa.array(left.text, pa.string()),
    }), tmp / "left.parquet")
    pq.write_table(pa.table({"text": pa.array(_profile_texts(left), pa.string())}),
                   tmp / "left_names.parquet")
    pq.write_table(pa.table({"id": left.ids, "record": pa.array(left.record, pa.int64())}),
                   tmp / "left_ids.parquet")
    (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    _swap(tmp, folder)


def load_state(folder: Path, fingerprint: str) -> tuple[MatchState | None, str]:
    """Read the state in `folder`; (None, why) when there is none or it does not fit."""
    meta_file = folder / "state.json"
    if not meta_file.exists():
        return None, "no earlier map to build on"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("version") != STATE_VERSION:
            return None, "the saved model is from another version of doorstep"
        if meta.get("fingerprint") != fingerprint:
            return None, "our accounts or the matcher's settings changed since the last fit"
        stamp_file = folder / SCORED / "stamp.json"
        stamp = json.loads(stamp_file.read_text(encoding="utf-8")) if stamp_file.exists() else {}
        if stamp.get("model_id") != meta.get("model_id"):
            return None, "the saved scores do not belong to the saved model"
        state = _read(folder, meta)
        state.fitted_records = int(meta["fitted_records"])
        state.changed_since_fit = int(stamp["changed_since_fit"])
        return state, ""
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        return None, f"the saved model could not be read ({type(e).__name__})"


def _table(relation: pa.Table | str) -> pa.Table:
    if isinstance(relation, pa.Table):
        return relation
    con = duckdb.connect()
    try:
        return con.sql(f"SELECT * FROM {relation}").to_arrow_table()
    finally:
        con.close()


def _scan(path: Path) -> str:
    """Return a DuckDB relation reading a Parquet file of the state, once checked readable."""
    pq.read_metadata(path)
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def _read(folder: Path, meta: dict[str, Any]) -> MatchState:
    words = pq.read_table(folder / "words.parquet")
    params = MatchParams(**meta["params"])
    stats = TokenStats.from_counts(
        Counter(dict(zip(words["word"].to_pylist(), words["df"].to_pylist(), strict=True))),
        meta["n"], params.unseen_token_count)
    model = NameModel({f: np.array(v, np.float64) for f, v in meta["m"].items()},
                      {f: np.array(v, np.float64) for f, v in meta["u"].items()},
                      meta["matches"])
    fitted = Fitted(model, np.array(meta["web_log_ratios"], np.float64),
                    np.array(meta["group_prior"], np.float64),
                    np.array(meta["group_cap"], np.float64))
    fields = FieldStats.from_tables(pq.read_table(folder / "fields.parquet"), meta["fields"])
    left_t = pq.read_table(folder / "left.parquet")
    ids = pq.read_table(folder / "left_ids.parquet")
    record = ids["record"].to_numpy()
    left = Side(ids["id"].combine_chunks(), record, left_t["name_pid"].to_numpy(),
                left_t["country"].to_pylist(), left_t["domain"].to_pylist(),
                _Profiles(pq.read_table(folder / "left_names.parquet")["text"].to_pylist()),
                [None] * left_t.num_rows, left_t["hint"].to_pylist(),
                left_t["cluster"].to_pylist(), left_t["text"].to_pylist())
    members = _Members(ids["id"].combine_chunks(), record, left_t.num_rows)
    # only new partner records meet these, through a join: DuckDB reads what it needs
    return MatchState(params, stats, fitted, list(meta["groups"]), fields,
                      _scan(folder / "counts.parquet"), left, _scan(folder / "left_keys.parquet"),
                      pq.read_table(folder / SCORED / "pairs.parquet").select(
                          PAIR_SCHEMA.names).cast(PAIR_SCHEMA),
                      pq.read_table(folder / SCORED / "right.parquet")["rkey"].combine_chunks(),
                      members, pq.read_table(folder / SCORED / "explained.parquet"))
