"""Rejected tasks in the per-minute rollups and the running totals (/metrics'
celery_task_rejected_total).

Both columns start at zero, as sent did in 0010: counting the history's rejected tasks
would mean reading every task row while the collector waits on these tables.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks_admin', '0012_memory_sample_pool_and_pid'),
    ]

    operations = [
        migrations.AddField(
            model_name='taskminuterollup',
            name='rejected',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='tasknametotal',
            name='rejected',
            field=models.BigIntegerField(default=0),
        ),
    ]
