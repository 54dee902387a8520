"""The console's own Celery app: control calls (inspect, revoke, ...) and the demo's tasks.

JSON only and UTC: the console never unpickles anything a broker hands it.
"""

import os

from celery import Celery

from tasks_admin import deadletter, poolmemory

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["demo"])
# The demo stands for a monitored app: its workers dead-letter every task that dies, so the
# console can retry it with its original arguments (README, "Dead letters").
deadletter.install(app)
# ...and report their pool processes' memory, so the advisor can see a leak in a prefork
# child (README, "Memory growth: what the console can see").
poolmemory.install(app)
