"""The console's own Celery app: control calls (inspect, revoke, ...) and the demo's tasks.

JSON only and UTC: the console never unpickles anything a broker hands it.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["demo"])
