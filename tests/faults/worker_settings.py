"""Settings of the Celery workers the fault tests start and kill (tests/faults/conftest.py).

The test settings, with tasks going through the broker, a short Redis visibility timeout (a killed
worker's unacknowledged task is handed to the next worker after seconds instead of Celery's default
hour) and emails sent to the test's SMTP sink when it runs one.
"""

import os

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ["QUORUM_FAULTS_VISIBILITY_TIMEOUT"])}
if os.environ.get("QUORUM_FAULTS_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST, EMAIL_PORT = "127.0.0.1", int(os.environ["QUORUM_FAULTS_SMTP_PORT"])
    EMAIL_USE_TLS = EMAIL_USE_SSL = False
    EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
