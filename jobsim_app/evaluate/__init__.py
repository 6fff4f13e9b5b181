"""Neighbour quality on labelled jobs: precision@k of same-label neighbours vs baselines.

    python -m jobsim_app.evaluate                      # the real sets of the shared data folder
    python -m jobsim_app.evaluate --dataset nyc-titles linkedin-field --embedder fitted tfidf
    python -m jobsim_app.evaluate FILE --label-column COL [--text-columns A B ...]
                                  [--company-column C] [--multi-label concat|split]
    python -m jobsim_app.evaluate --synthetic 5000

FILE is any CSV or Parquet file with a label column. The label is kept out of everything
the lists are computed from: it is not in the embedding text (the pipeline's layout of
:func:`jobsim.text.build_embedding_text` with ``category`` empty: the first text column is
the title, the others the description) and not in the context bonus (category "unknown" for
every row). Lists come from a ``list_builder`` (:mod:`jobsim_app.evaluate.lists`; default:
:func:`jobsim.neighbours.exact_topk` then :func:`jobsim.scoring.rerank`, cosine only unless
``--cosine-weight`` < 1 blends in the non-label bonus).

Reported per method, with k = 10:

- **p@k** = mean over rows of (list entries sharing the label) / k, duplicates counted;
- **p@k dedup** = the same once duplicates are taken out of each list (entries of the
  subject's own duplicate group, and repeats of a group already listed), refilled from the
  deeper ranking: what a de-duplicating list would show. Duplicates = same embedding text
  (same content hash), or reference cosine ≥ 0.97 and the same company when both rows have
  one (the reference is the TF-IDF baseline, the same for every method);
- **dup subj / dup other** = shares of list entries that duplicate the subject / an earlier
  entry of the same list (goal: 0);
- a per-category table (p@k dedup of the rows of each base category).

Baselines on the same rows: **random** = the exact expected precision of a uniformly random
other row (over all ordered pairs i ≠ j); **tfidf** = scikit-learn ``TfidfVectorizer`` (word
1–2 grams, sublinear tf, L2) fitted on the data set's corpus, exactly as the ``fitted``
embedder is fitted (every row of the source with text), exact sparse cosine. Every row is
kept (reposts are real; ``--collapse-duplicates`` keeps the first of identical texts).

Multi-label strings: ``--multi-label concat`` handles labels made of base categories
joined by a space with no separator (NYC ``Job Category``: "Health Policy, Research &
Analysis" = "Health" + "Policy, Research & Analysis"); ``--multi-label split --label-sep
';'`` splits on a separator. A neighbour counts when it shares at least one base category
("overlap"); exact label-string equality is reported too.
"""

from jobsim_app.evaluate.datasets import Dataset, file_dataset, synthetic_dataset
from jobsim_app.evaluate.lists import ListBuilder, ListRequest, default_list_builder, duplicate_groups
from jobsim_app.evaluate.real import real_dataset
from jobsim_app.evaluate.report import Report, Result, evaluate, format_report

__all__ = [
    "Dataset", "ListBuilder", "ListRequest", "Report", "Result", "default_list_builder",
    "duplicate_groups", "evaluate", "file_dataset", "format_report", "real_dataset",
    "synthetic_dataset",
]
