from django.urls import path
from django.views.generic import RedirectView

from tasks_admin import views

app_name = "tasks_admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Until the console's own pages land, the history is browsable in the read-only admin.
    path("", RedirectView.as_view(url="/admin/", permanent=False), name="home"),
]
