"""Read side: similar jobs with fallback (library + HTTP API) and snapshot exports.

Never imports ``flows/`` or ``tasks/``: it reads what the pipeline wrote.
"""

from api_export.similar import SimilarJobsResponse, SimilarJobsService, similar_jobs

__all__ = ["SimilarJobsResponse", "SimilarJobsService", "similar_jobs"]
