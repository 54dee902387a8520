"""An index on the task history's last event time, for the advisor's window.

Built CONCURRENTLY: an ordinary CREATE INDEX would block the collector's writes while it is
built (18 s for 10 million tasks on a 2-core box; longer on a bigger history).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks_admin", "0010_rollup_sent_queue_wait_totals"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="taskrecord",
            index=models.Index(fields=["last_event_at"], name="task_last_event_idx"),
        ),
    ]
