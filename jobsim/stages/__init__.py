"""The pipeline's stages as plain functions over repository interfaces (:mod:`jobsim.repositories`).

Each module is one stage: ``pull``, ``prepare``, ``embed``, ``neighbours``, ``runs``. Pure
steps take and return plain data; I/O steps take repositories (MongoDB in production, in
memory in fast tests). Prefect tasks in ``tasks/`` wrap them thinly; ``flows/`` orders them.
"""
