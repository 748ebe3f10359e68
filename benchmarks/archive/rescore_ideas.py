"""Second-stage rescoring ideas for hybrid retrieval, measured on PIAF (dev by default).

The first stage is sourcier's default hybrid retrieval, replayed in NumPy exactly as
``benchmarks/tune.py`` does (top-100 candidates per retriever, per-query min-max, weighted
0.5 dense / 0.5 BM25). The ``CAND`` (50) best fused chunks of each question are then
rescored as ``fused + w * feature`` where ``feature`` is min-max normalised over those
candidates (or already in [0, 1]). Every feature is cheap at query time: term lists,
positions and per-article statistics computed once at index time, no model pass per
candidate.

Features (``FEATURES``):

- ``sib_mm`` / ``sib_rel``: sibling disambiguation. BM25 of the chunk text whose idf and
  average length come from the chunks of the **same article** only (a term every sibling
  has weighs ~0; a term only this passage has weighs most). ``sib_mm``: min-max over the
  candidates; ``sib_rel``: the score divided by the best score among the candidates of the
  same article (the best sibling gets 1, the others less).
- ``span10`` / ``span20``: term proximity: the largest share of the query's idf mass (distinct
  query terms) that one window of 10 / 20 consecutive content terms of the chunk covers.
- ``tp``: BM25TP-style proximity: sum over pairs of occurrences of two different query terms
  at most 5 content terms apart of ``idf_i * idf_j / d**2`` (log1p, then min-max).
- ``bigram`` / ``bigram_w`` / ``bigram_t``: the idf-weighted share of query stem bigrams
  (adjacent content terms of the question) found as adjacent terms in the chunk
  (``bigram``: same order; ``bigram_w``: either order, up to one term between;
  ``bigram_t``: same order, in the chunk with its title in front).
- ``atype`` / ``atype_sent``: answer-type match. The question's wh-type (date, number,
  person, place; by regular expression) and whether the chunk (``atype``) or its sentence
  with the most query idf mass (``atype_sent``) holds a token of that type not already in
  the question. Binary (0 for questions without a type).
- ``cover``: the idf-weighted share of the distinct query terms the chunk (with its title)
  contains.
- ``qlm200`` / ``qlm1000``: Dirichlet-smoothed query likelihood (mu = 200 / 1000) over the
  chunk with its title, collection statistics from the whole index.
- ``dres``: dense sibling contrast: cosine between the query vector and the chunk vector
  minus the mean vector of its article's chunks (0 for one-chunk articles).

Usage (from the repository root; the index is built with the default settings if missing)::

    .venv/bin/python benchmarks/rescore_ideas.py --index /tmp/piafidx \\
        [--out eval/reports/tuning-2026-11-22/rescore-ideas-dev.json]
    # one configuration only (the test confirmation):
    .venv/bin/python benchmarks/rescore_ideas.py --index /tmp/piafidx --split test \\
        --config '{"sib_rel": 0.1}'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune import MAX_K, cached_embed, dense_matrix, minmax, summarise, topk_mask  # noqa: E402

from sourcier import Settings, build_index_from_records, load_index  # noqa: E402
from sourcier.analysis import analyze  # noqa: E402
from sourcier.evaluation import metrics as m
from sourcier.evaluation.datasets import load_dataset  # noqa: E402

CAND = 50  # fused candidates rescored per question
FIRST_STAGE = 100  # candidates per retriever (sourcier's default)
DENSE_WEIGHT = 0.5
WEIGHTS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0)
FEATURES = (
    "sib_mm",
    "sib_rel",
    "span10",
    "span20",
    "tp",
    "bigram",
    "bigram_w",
    "bigram_t",
    "atype",
    "atype_sent",
    "cover",
    "qlm200",
    "qlm1000",
    "dres",
)
K1, B = 1.2, 0.75


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------- answer types

_MONTHS = (
    "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|"
    "novembre|décembre|decembre"
)
_Q_TYPES = (
    (
        "date",
        re.compile(
            r"\bquand\b|\bquelle? (?:année|annee|date|époque|epoque|période|periode|"
            r"siècle|siecle|jour|mois|décennie)\b|\ben quel (?:mois|siècle|siecle)\b"
        ),
    ),
    (
        "number",
        re.compile(
            r"\bcombien\b|\bquel(?:le)?s? (?:est |était |sont )?(?:le |la |l')?"
            r"(?:nombre|pourcentage|montant|âge|age|taux|proportion|part|superficie|surface|"
            r"population|distance|taille|hauteur|longueur|somme|prix|coût|cout|budget|"
            r"durée|duree|chiffre|effectif|altitude|vitesse|poids)\b"
        ),
    ),
    (
        "person",
        re.compile(
            r"^qui\b|\b(?:par|à|a|de|avec|pour|contre|chez) qui\b|\bqui (?:est|était|etait|a|"
            r"fut|sont|étaient|ont|avait)\b|\bquel(?:le)?s? (?:est |était )?(?:le |la )?"
            r"(?:personnage|joueur|auteur|roi|reine|président|presidente?|homme|femme|"
            r"architecte|fondateur|entraîneur|entraineur|maire|ministre|artiste|écrivain)\b"
        ),
    ),
    (
        "place",
        re.compile(
            r"^où\b|\boù\b|\bd'où\b|\bdans quel(?:le)? (?:pays|ville|lieu|endroit|région|"
            r"region|département|departement|continent|quartier|île|ile|province|état|etat)\b"
            r"|\bquel(?:le)? (?:pays|ville|lieu|endroit|région|region|continent)\b"
        ),
    ),
)
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’-]+"
_A_TYPES = {
    "date": re.compile(rf"\b(?:1\d{{3}}|20\d{{2}})\b|\b(?:{_MONTHS})\b|\bsiècles?\b", re.I),
    "number": re.compile(
        r"\d|\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|"
        r"trente|quarante|cinquante|soixante|cent|cents|mille|million|millions|milliard|"
        r"milliards|moitié|tiers|quart)\b",
        re.I,
    ),
    "person": re.compile(rf"{_CAP}(?:\s+(?:de |d'|du |von |van |le |la )?{_CAP})+"),
    "place": re.compile(rf"\b(?:à|a|en|au|aux|dans|vers|de|près de)\s+(?:la |le |l'|l’)?{_CAP}"),
}


def question_type(question: str) -> str | None:
    q = question.lower().replace("’", "'")
    for name, pattern in _Q_TYPES:
        if pattern.search(q):
            return name
    return None


def has_type(text: str, kind: str, question_lower: str) -> bool:
    """A token of the answer type in ``text`` that the question does not already hold."""
    for match in _A_TYPES[kind].finditer(text):
        token = match.group(0).lower()
        if kind == "place":
            token = token.split(None, 1)[-1]
        if kind == "number" and token.isdigit():
            # the whole number, not one of its digits
            s, e = match.start(), match.end()
            while e < len(text) and text[e].isdigit():
                e += 1
            token = text[s:e]
        if token not in question_lower:
            return True
    return False


# ----------------------------------------------------------------------- the bench


class ChunkInfo:
    """Per-chunk data a query-time rescorer would keep (computed once at index time)."""

    __slots__ = (
        "terms",
        "pos",
        "tf",
        "length",
        "lex_tf",
        "lex_len",
        "pairs",
        "pairs_w",
        "pairs_t",
    )

    def __init__(self, text: str, title: str) -> None:
        self.terms = analyze(text)
        self.pos: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            self.pos.setdefault(t, []).append(i)
        self.tf = Counter(self.terms)
        self.length = len(self.terms)
        lex = analyze(title) + self.terms
        self.lex_tf = Counter(lex)
        self.lex_len = len(lex)
        ts = self.terms
        self.pairs = {(ts[i], ts[i + 1]) for i in range(len(ts) - 1)}
        self.pairs_t = self.pairs | {(lex[i], lex[i + 1]) for i in range(len(lex) - len(ts))}
        pw = set()
        for i in range(len(ts)):
            for j in (i + 1, i + 2):
                if j < len(ts):
                    pw.add((ts[i], ts[j]))
                    pw.add((ts[j], ts[i]))
        self.pairs_w = pw


class Bench:
    def __init__(self, index_path: Path, split: str) -> None:
        ds = load_dataset("piaf")
        idx = load_index(index_path)
        snap = idx.snapshot
        self.snap = snap
        self.queries = [q for q in ds.select(split).queries if q.answerable and q.gold]
        self.chunks = snap.chunks
        n = len(self.chunks)
        self.keys = [ds.doc_key(snap.documents[c.doc_id].source) for c in self.chunks]
        self.golds = [set(q.gold) for q in self.queries]
        self.titles = [snap.documents[c.doc_id].title for c in self.chunks]
        self.groups = np.array(self._group_ids(self.titles), dtype=np.int64)
        log(f"{split}: {len(self.queries)} questions, {n} chunks")
        texts = [q.question for q in self.queries]
        cache = index_path.parent / f"rescore-qvec-{split}.npy"
        self.qv = cached_embed(cache, texts, idx.embedder.embed_queries, "queries")
        self.V = dense_matrix(snap)
        self.dense = self.qv @ self.V.T
        fpos = {int(f): i for i, f in enumerate(snap.faiss_ids)}
        self.bm25 = np.zeros((len(self.queries), n), dtype=np.float32)
        for qi, q in enumerate(self.queries):
            for fid, score in snap.bm25.search(q.question, k=n):
                self.bm25[qi, fpos[fid]] = score
        dm = topk_mask(self.dense, FIRST_STAGE)
        bm = topk_mask(self.bm25, FIRST_STAGE, positive=True)
        fused = DENSE_WEIGHT * minmax(self.dense, dm) + (1 - DENSE_WEIGHT) * minmax(self.bm25, bm)
        self.fused = np.where(dm | bm, fused, -1.0)
        # the CAND best fused chunks (ties: index order, as np.argsort stable)
        self.cand = np.argsort(-self.fused, axis=1, kind="stable")[:, :CAND]
        self.base = np.take_along_axis(self.fused, self.cand, axis=1)
        self.info = [ChunkInfo(c.text, t) for c, t in zip(self.chunks, self.titles, strict=True)]
        self._article_stats()
        self._sentences()
        # collection language model (chunk + title terms)
        coll: Counter[str] = Counter()
        for ci in self.info:
            coll.update(ci.lex_tf)
        self.coll_total = sum(coll.values())
        self.coll = coll
        # dense residuals against the article mean
        res = np.zeros_like(self.V)
        for g in np.unique(self.groups):
            members = np.flatnonzero(self.groups == g)
            if len(members) > 1:
                r = self.V[members] - self.V[members].mean(axis=0)
                res[members] = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-9)
        self.res = res

    @staticmethod
    def _group_ids(titles: list[str]) -> list[int]:
        ids: dict[str, int] = {}
        return [ids.setdefault(t, len(ids)) for t in titles]

    def _article_stats(self) -> None:
        """Per-article document frequencies and average chunk lengths."""
        self.art_df: dict[int, Counter[str]] = {}
        self.art_n: dict[int, int] = {}
        self.art_avg: dict[int, float] = {}
        for ci, g in zip(self.info, self.groups.tolist(), strict=True):
            self.art_df.setdefault(g, Counter()).update(set(ci.terms))
            self.art_n[g] = self.art_n.get(g, 0) + 1
            self.art_avg[g] = self.art_avg.get(g, 0.0) + ci.length
        for g in self.art_avg:
            self.art_avg[g] = max(self.art_avg[g] / self.art_n[g], 1.0)

    def _sentences(self) -> None:
        """Each chunk's sentences: raw text and analysed terms."""
        self.sents: list[list[tuple[str, set[str]]]] = []
        for c in self.chunks:
            doc_text = self.snap.documents[c.doc_id].text
            spans = self.snap.sentences.get(c.chunk_id) or [(c.start, c.end, -1)]
            self.sents.append([(doc_text[s:e], set(analyze(doc_text[s:e]))) for s, e, _ in spans])

    # ----- features ------------------------------------------------------------------

    def features(self) -> dict[str, np.ndarray]:
        nq = len(self.queries)
        out = {name: np.zeros((nq, CAND), dtype=np.float64) for name in FEATURES}
        idf = self.snap.bm25.idf
        t0 = time.time()
        for qi, q in enumerate(self.queries):
            qterms = analyze(q.question)
            uniq = list(dict.fromkeys(qterms))
            w = {t: idf(t) for t in uniq}
            total = sum(w.values()) or 1.0
            bigrams = {(a, b) for a, b in zip(qterms, qterms[1:], strict=False) if a != b}
            big_total = sum(w[a] + w[b] for a, b in bigrams) or 1.0
            qtype = question_type(q.question)
            qlow = q.question.lower()
            cands = self.cand[qi].tolist()
            groups = self.groups[cands]
            for j, c in enumerate(cands):
                ci = self.info[c]
                g = int(groups[j])
                # sibling-local BM25
                n_g, df_g, avg_g = self.art_n[g], self.art_df[g], self.art_avg[g]
                norm = K1 * (1 - B + B * ci.length / avg_g)
                s = 0.0
                for t in qterms:
                    tf = ci.tf.get(t, 0)
                    if tf:
                        df = df_g[t]
                        s += (
                            math.log(1 + (n_g - df + 0.5) / (df + 0.5))
                            * tf
                            * (K1 + 1)
                            / (tf + norm)
                        )
                out["sib_mm"][qi, j] = s
                # proximity
                occ = sorted((p, t) for t in uniq for p in ci.pos.get(t, ()))
                out["span10"][qi, j] = window_mass(occ, 10, w) / total
                out["span20"][qi, j] = window_mass(occ, 20, w) / total
                acc = 0.0
                for a in range(len(occ)):
                    pa, ta = occ[a]
                    for b in range(a + 1, len(occ)):
                        pb, tb = occ[b]
                        d = pb - pa
                        if d > 5:
                            break
                        if ta != tb:
                            acc += w[ta] * w[tb] / (d * d)
                out["tp"][qi, j] = math.log1p(acc)
                # stem bigrams
                if bigrams:
                    out["bigram"][qi, j] = (
                        sum(w[a] + w[b] for a, b in bigrams if (a, b) in ci.pairs) / big_total
                    )
                    out["bigram_t"][qi, j] = (
                        sum(w[a] + w[b] for a, b in bigrams if (a, b) in ci.pairs_t) / big_total
                    )
                    out["bigram_w"][qi, j] = (
                        sum(w[a] + w[b] for a, b in bigrams if (a, b) in ci.pairs_w) / big_total
                    )
                # coverage and query likelihood (chunk with its title)
                out["cover"][qi, j] = sum(w[t] for t in uniq if t in ci.lex_tf) / total
                for mu, name in ((200, "qlm200"), (1000, "qlm1000")):
                    ll = 0.0
                    for t in qterms:
                        pc = (self.coll.get(t, 0) + 0.5) / (self.coll_total + 1)
                        ll += math.log((ci.lex_tf.get(t, 0) + mu * pc) / (ci.lex_len + mu))
                    out[name][qi, j] = ll
                # answer type
                if qtype:
                    out["atype"][qi, j] = float(has_type(self.chunks[c].text, qtype, qlow))
                    best = max(self.sents[c], key=lambda st: sum(w[t] for t in st[1] if t in w))
                    out["atype_sent"][qi, j] = float(has_type(best[0], qtype, qlow))
            # relative sibling score: divided by the best candidate sibling's
            sib = out["sib_mm"][qi]
            rel = np.zeros(CAND)
            for g in np.unique(groups):
                members = groups == g
                top = sib[members].max()
                rel[members] = sib[members] / top if top > 0 else 0.0
            out["sib_rel"][qi] = rel
            out["dres"][qi] = self.res[cands] @ self.qv[qi]
            if (qi + 1) % 500 == 0:
                log(f"  features: {qi + 1}/{nq} ({time.time() - t0:.0f} s)")
        log(f"features: {(time.time() - t0) * 1000 / nq:.2f} ms per question")
        for name in ("sib_mm", "tp", "qlm200", "qlm1000", "dres"):
            out[name] = row_minmax(out[name])
        return out

    def rankings(self, scores: np.ndarray) -> list[list[str]]:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :MAX_K]
        top = np.take_along_axis(self.cand, order, axis=1)
        return [[self.keys[i] for i in row] for row in top]

    def evaluate(self, scores: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
        """Metrics of the rescored candidates (``scores``: questions x CAND)."""
        rankings = self.rankings(scores)
        rows = np.arange(len(self.queries)) if rows is None else rows
        return summarise([rankings[r] for r in rows], [self.golds[r] for r in rows])

    def paired(self, scores: np.ndarray, seed: int = 0) -> dict[str, Any]:
        """Per-question reciprocal-rank changes against the default, with a bootstrap CI."""
        rr = [
            np.array(
                [m.mrr_at_k(r, g, 10) for r, g in zip(self.rankings(s), self.golds, strict=True)]
            )
            for s in (self.base, scores)
        ]
        diff = rr[1] - rr[0]
        rng = np.random.default_rng(seed)
        boot = diff[rng.integers(0, len(diff), (2000, len(diff)))].mean(axis=1)
        return {
            "better": int((diff > 0).sum()),
            "worse": int((diff < 0).sum()),
            "delta_mrr10": float(diff.mean()),
            "delta_mrr10_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        }


def window_mass(occ: list[tuple[int, str]], size: int, w: dict[str, float]) -> float:
    """The largest idf mass of distinct terms within ``size`` consecutive positions."""
    best, lo = 0.0, 0
    counts: Counter[str] = Counter()
    mass = 0.0
    for p, t in occ:
        counts[t] += 1
        if counts[t] == 1:
            mass += w[t]
        while p - occ[lo][0] >= size:
            tl = occ[lo][1]
            counts[tl] -= 1
            if counts[tl] == 0:
                mass -= w[tl]
            lo += 1
        best = max(best, mass)
    return best


def row_minmax(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - lo
    return np.where(span > 1e-12, (x - lo) / np.where(span > 1e-12, span, 1.0), 0.0)


# ----------------------------------------------------------------------- experiments


def combine(b: Bench, feats: dict[str, np.ndarray], config: dict[str, float]) -> np.ndarray:
    s = b.base.copy()
    for name, wt in config.items():
        s = s + wt * feats[name]
    return s


def fmt(r: dict[str, float]) -> str:
    return " ".join(f"{k} {r[k]:.3f}" for k in ("R@1", "R@5", "R@10", "R@20", "MRR@10", "nDCG@10"))


def key(r: dict[str, float]) -> float:
    """Selection criterion: MRR@10, then R@5."""
    return r["MRR@10"] + 0.5 * r["R@5"]


def coordinate_ascent(
    b: Bench,
    feats: dict[str, np.ndarray],
    names: Iterable[str],
    rows: np.ndarray | None = None,
    passes: int = 2,
) -> dict[str, float]:
    config = {n: 0.0 for n in names}
    best = key(b.evaluate(combine(b, feats, config), rows))
    for _ in range(passes):
        for n in config:
            for wt in (0.0, *WEIGHTS):
                trial = {**config, n: wt}
                r = key(b.evaluate(combine(b, feats, trial), rows))
                if r > best + 1e-9:
                    best, config = r, trial
    return {n: wt for n, wt in config.items() if wt}


def sweep(b: Bench, feats: dict[str, np.ndarray]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []

    def add(name: str, config: dict[str, float], **extra: Any) -> dict[str, float]:
        r = b.evaluate(combine(b, feats, config))
        results.append({"variant": name, "config": config, **extra, **r})
        log(f"{name:14} {json.dumps(config):60} {fmt(r)}")
        return r

    add("default", {})
    best_single: dict[str, tuple[float, dict[str, float]]] = {}
    for name in FEATURES:
        for wt in WEIGHTS:
            r = add(name, {name: wt})
            if name not in best_single or key(r) > best_single[name][0]:
                best_single[name] = (key(r), {name: wt})
    base_key = key(results[0])
    ranked = sorted(best_single, key=lambda n: -best_single[n][0])
    log("best single features:", [(n, round(best_single[n][0] - base_key, 4)) for n in ranked])
    # combination: coordinate ascent over the features that help alone (at most 5)
    helpful = [n for n in ranked if best_single[n][0] > base_key + 1e-9][:5]
    combo = coordinate_ascent(b, feats, helpful) if helpful else {}
    add("combination", combo, searched=helpful, paired=b.paired(combine(b, feats, combo)))
    log(f"  paired: {json.dumps(results[-1]['paired'])}")
    if len(combo) > 1:
        for name in combo:
            add("ablation", {n: wt for n, wt in combo.items() if n != name}, dropped=name)
    # honesty check: the same search on one half of dev's articles, scored on the other
    halves = np.array(
        [int(hashlib.sha256(q.group.encode()).hexdigest(), 16) % 2 for q in b.queries]
    )
    cross = []
    for fold in (0, 1):
        train, held = np.flatnonzero(halves == fold), np.flatnonzero(halves != fold)
        cfg = coordinate_ascent(b, feats, helpful, rows=train) if helpful else {}
        r0 = b.evaluate(combine(b, feats, {}), held)
        r1 = b.evaluate(combine(b, feats, cfg), held)
        cross.append({"fold": fold, "config": cfg, "held_default": r0, "held_rescored": r1})
        log(f"fold {fold}: tuned {json.dumps(cfg)}\n  held-out default  {fmt(r0)}")
        log(f"  held-out rescored {fmt(r1)}")
    return {
        "results": results,
        "best_single": {n: best_single[n][1] for n in ranked},
        "combination": combo,
        "two_fold_by_article": cross,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, default=Path("/tmp/piafidx"))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--config", help="evaluate only this JSON {feature: weight} (and default)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.split != "dev" and not args.config:
        ap.error("on a split other than dev, give the single --config to confirm")
    if not (args.index / "CURRENT").exists():
        ds = load_dataset("piaf")
        report = build_index_from_records(
            list(ds.records), index=args.index, settings=Settings(), show_progress=False
        )
        log(f"index {args.index}: {report.embedded} chunks embedded")
    b = Bench(args.index, args.split)
    feats = b.features()
    if args.config:
        config = json.loads(args.config)
        payload: dict[str, Any] = {"split": args.split, "results": []}
        for name, cfg in (("default", {}), ("rescored", config)):
            r = b.evaluate(combine(b, feats, cfg))
            payload["results"].append({"variant": name, "config": cfg, **r})
            log(f"{name:10} {json.dumps(cfg):50} {fmt(r)}")
        payload["paired"] = b.paired(combine(b, feats, config))
        log(f"paired: {json.dumps(payload['paired'])}")
    else:
        payload = {"split": args.split, **sweep(b, feats)}
    payload.update(questions=len(b.queries), chunks=len(b.chunks), candidates=CAND)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
