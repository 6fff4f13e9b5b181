"""Lines ``scripts/stack.sh`` prints about the stack: where the flows' MongoDB is (the settings
a flow started here would load) and whether it answers.

``python -m jobsim_app.stackinfo mongo``
"""

from __future__ import annotations

import sys

from jobsim import localstack
from jobsim.settings import MongoSettings, Settings
from jobsim_app.failures import where


def mongo_line(timeout_ms: int = 2000) -> str:
    from jobsim_app.preflight import check_mongo

    settings = Settings()
    uri = settings.mongo.uri.get_secret_value()
    recorded = localstack.mongo()
    if recorded and recorded["uri"] == uri:
        origin = f"recorded in {localstack.RECORD}"
    elif uri != MongoSettings().uri.get_secret_value():
        origin = "JOBSIM_MONGO__URI"
    else:
        origin = "the default: nothing recorded and JOBSIM_MONGO__URI unset"
    settings.mongo.timeout_ms = timeout_ms
    try:
        check_mongo(settings)
        state = "answering"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        state = f"NOT answering ({type(exc).__name__})"
    return f"MongoDB:    database {settings.mongo.database} at {where(uri)} ({origin}), {state}"


if __name__ == "__main__":
    if sys.argv[1:] == ["mongo"]:
        print(mongo_line())
    else:
        sys.exit("usage: python -m jobsim_app.stackinfo mongo")
