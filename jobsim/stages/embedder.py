"""The run's embedder: for the corpus-fitted local embedder, the model it embeds with.

The model is fitted on the texts of every job that gets a list and stored in the database
with its version (a hash of its bytes). Runs load it; a full rebuild fits a new one (when
``refit_on_full_rebuild``), and then every job's content hash — which holds the version —
changes, so the same run re-embeds every listed job: one run never mixes versions, and a
vector never changes while the version does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from jobsim.embedders.fitted import fit_model
from jobsim.embedders.fitted_model import FittedModel
from jobsim.repositories import StateRepo
from jobsim.stages.prepare import Prepared

log = logging.getLogger(__name__)

Corpus = Callable[[], Prepared]  # every listed job's prepared text (read only when fitting)


def fitted_model(state: StateRepo, family: str, dims: int, refit: bool, corpus: Corpus,
                 now: datetime) -> tuple[FittedModel, bool]:
    """The stored model, or a new one fitted on ``corpus()`` (none stored, or ``refit``);
    and whether it was fitted now."""
    name = f"{family}:{dims}"
    stored = None if refit else state.embedder_model(name)
    if stored is not None:
        return FittedModel.from_bytes(stored), False
    prepared = corpus()
    started = time.perf_counter()
    model = fit_model(prepared.texts, dims, [job.company or None for job in prepared.jobs])
    data = model.to_bytes()
    state.save_embedder_model(name, model.version, data, now, len(prepared.texts))
    log.info("fitted %s on %d texts in %.1f s (%d bytes)", model.version, len(prepared.texts),
             time.perf_counter() - started, len(data))
    return model, True
