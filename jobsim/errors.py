"""The few exception classes jobsim raises."""


class JobsimError(Exception):
    """Base class of every error jobsim raises on purpose."""


class ConfigError(JobsimError):
    """A setting is missing or inconsistent."""


class EmbeddingError(JobsimError):
    """The embedding provider failed permanently for one or more inputs."""


class TransientError(JobsimError):
    """An I/O failure that may succeed when retried (timeouts, 429, 5xx, connection)."""


class ImportFileError(JobsimError):
    """A bulk-import file cannot be read or mapped."""


class InvalidRequestError(JobsimError):
    """A caller's request (job id, limit) is malformed; it never reaches a query."""


class NotFoundError(JobsimError):
    """The requested job does not exist (or is deleted)."""


class BusyError(JobsimError):
    """Another run holds the writer lease of this database; this one did not write."""
