"""Websocket routes: one per live page. What a page is about (a task id, a hostname, a
filter) travels in the query string, which carries any string; paths would not."""

from django.urls import path

from tasks_admin import consumers

websocket_urlpatterns = [
    path("ws/dashboard/", consumers.DashboardConsumer.as_asgi()),
    path("ws/tasks/", consumers.TaskListConsumer.as_asgi()),
    path("ws/task/", consumers.TaskConsumer.as_asgi()),
    path("ws/workers/", consumers.WorkersConsumer.as_asgi()),
    path("ws/worker/", consumers.WorkerConsumer.as_asgi()),
    path("ws/queues/", consumers.QueuesConsumer.as_asgi()),
    path("ws/failures/", consumers.FailuresConsumer.as_asgi()),
]
