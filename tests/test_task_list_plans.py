"""The task list's filtered pages walk an index in the list's order: no plan sorts.

With an index that stopped short of the list's order, the planner chose between sorting
and walking by its row estimate, and for a value its statistics did not know it sorted
every matching row (migration 0014).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_admin.models import TaskRecord
from tasks_admin.selectors import tasks as task_selectors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("column", "value"),
    [("state", "FAILURE"), ("name", "app.new"), ("worker", "celery@new-pod"), ("queue", "q9")],
)
def test_a_filtered_page_is_an_index_walk_without_a_sort(column, value):
    now = timezone.now()
    TaskRecord.objects.create(
        task_id="t-1", first_seen_at=now, last_event_at=now, updated_at=now, **{column: value}
    )
    filters = task_selectors.TaskFilters(
        **{"states" if column == "state" else column: ((value,) if column == "state" else value)}
    )
    with CaptureQueriesContext(connection) as queries:
        page = task_selectors.task_page(filters)
    assert [row.task_id for row in page.rows] == ["t-1"]
    [list_sql] = [q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"]]
    with connection.cursor() as cursor:
        # A tiny test table would be read whole: make the planner show its index plan.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + list_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"task_{column}_order_idx" in plan
    assert "Sort" not in plan, plan
