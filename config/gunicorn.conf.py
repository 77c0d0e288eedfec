"""gunicorn's settings file (`gunicorn -c config/gunicorn.conf.py`): with LOG_FORMAT=json,
gunicorn's own lines (its error log and the access log) come out as JSON objects too, like
the application's (settings.LOGGING), so the web container's output is one object per line."""

import os

if os.environ.get("LOG_FORMAT", "plain").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json"}},
        # Until Django loads settings.LOGGING (the same format) in each worker process.
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }
