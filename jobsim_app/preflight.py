"""Checks a command makes before it starts work: is MongoDB there and does it let us in, does
the embedding service answer and accept the key. A failure raises the library's own error
(turned into one line by :mod:`jobsim_app.failures`), before anything was written."""

from __future__ import annotations

import logging

from jobsim.errors import ConfigError
from jobsim.settings import EmbeddingSettings, Settings

log = logging.getLogger(__name__)


def check_mongo(settings: Settings):  # -> pymongo Database
    """``ping`` the configured server (this also authenticates); returns the database."""
    from pymongo.errors import PyMongoError

    from storage import connect

    try:
        db = connect(settings.mongo)
    except PyMongoError:
        raise
    except ValueError as exc:  # pymongo's URI parser raises plain ValueErrors too
        raise ConfigError(f"JOBSIM_MONGO__URI is not a valid MongoDB URI ({str(exc).split('. Hint')[0]})") from None
    db.command("ping")
    return db


def check_embedding_service(cfg: EmbeddingSettings) -> None:
    """With the openai provider: one 2-token request, to fail now (not after pulling every job)
    when the server is unreachable, the key is refused or the model does not exist. Rate
    limits and server errors are left to the run, which retries them."""
    if cfg.provider != "openai":
        return
    import openai

    try:
        client = openai.OpenAI(api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                               base_url=cfg.base_url, timeout=min(cfg.request_timeout_s, 30.0), max_retries=0)
    except openai.OpenAIError:
        raise ConfigError("the openai provider needs an API key: set JOBSIM_EMBEDDING__API_KEY "
                          "(or OPENAI_API_KEY)") from None
    service = str(client.base_url).rstrip("/")
    extra = {"dimensions": cfg.dimensions} if cfg.model.startswith("text-embedding-3") else {}
    try:
        client.embeddings.create(model=cfg.model, input=["jobsim check"], **extra)
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403, 404):
            exc.service = service  # type: ignore[attr-defined]
            raise
        log.warning("embedding service check: HTTP %d; the run will retry", exc.status_code)
    except openai.APITimeoutError:
        log.warning("embedding service check: no answer within %.0f s; the run will retry",
                    min(cfg.request_timeout_s, 30.0))
    except openai.APIConnectionError as exc:
        exc.service = service  # type: ignore[attr-defined]
        raise
    finally:
        client.close()
