from django.apps import AppConfig


class TasksAdminConfig(AppConfig):
    name = "tasks_admin"
    verbose_name = "Celery console"
    default_auto_field = "django.db.models.BigAutoField"
