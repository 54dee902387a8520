from django.urls import path

from tasks_admin import views

app_name = "tasks_admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
