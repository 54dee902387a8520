"""The task list's filter indexes end with task_id, as the list's order does.

The list is ordered ``first_seen_at DESC, task_id`` (task_id breaks ties for the keyset).
With ``(worker, first_seen_at DESC)`` the planner had to choose a sort, and for a value its
statistics do not know yet (a worker, task name or queue that appeared since the last
ANALYZE: autoscaled workers get new hostnames) it estimated one row and chose to sort every
matching row: 18 ms for a new worker with 11,000 tasks on a 10-million-task history, and
proportionally more as that worker's history grows until autovacuum analyzes the table
(after 10 % of it changed). An index in the list's full order leaves one plan: walk it and
stop after a page, whatever the estimate.

Each new index is built CONCURRENTLY before the old one is dropped, so the collector's
writes and the pages carry on during the migration.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

COLUMNS = ("state", "name", "worker", "queue")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks_admin", "0013_rollup_rejected"),
    ]

    operations = [
        *(
            AddIndexConcurrently(
                model_name="taskrecord",
                index=models.Index(
                    fields=[column, "-first_seen_at", "task_id"], name=f"task_{column}_order_idx"
                ),
            )
            for column in COLUMNS
        ),
        *(
            RemoveIndexConcurrently(model_name="taskrecord", name=f"task_{column}_seen_idx")
            for column in COLUMNS
        ),
    ]
