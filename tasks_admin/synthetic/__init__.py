"""Synthetic task history, loaded fast with COPY: what ``manage.py fill_history`` runs.

The rows look like what the collector writes for a real cluster: every task has its events
in the partitioned event log (the ``fields`` JSON laid out as the writer stores it), its
row is the fold of those events under the collector's merge rules (tests refold a sample
with ``merge.fold`` and compare), and the per-minute rollups are the sum of the rows'
contributions (``rollups._contribute``), so the dashboard agrees with the task list.

Speed comes from three things:

- ``--jobs`` processes, each generating a contiguous slice of time and streaming it with
  COPY over its own connections (task rows; one per event log day), so Python generation and
  PostgreSQL parsing overlap on every core;
- event log days that do not exist yet are loaded as plain tables without indexes, then
  indexed, checked and attached as partitions (the usual bulk-load path of partitioned
  tables): building a B-tree from sorted input is far cheaper than ten million random
  inserts into one;
- when the task table is empty, its indexes are dropped before the load and rebuilt after
  it (in a ``finally``, so an error or Ctrl-C still restores them; the definitions are
  also printed first). A table with rows keeps its indexes: other readers may need them.

Event ids come from the log's identity sequence, reserved in one block up front; event keys
are random 64-bit numbers (the collector hashes the event; only uniqueness per task matters).
"""

from tasks_admin.synthetic.generator import Cluster, cluster
from tasks_admin.synthetic.load import FillReport, conninfo, fill_history

__all__ = ["Cluster", "FillReport", "cluster", "conninfo", "fill_history"]
