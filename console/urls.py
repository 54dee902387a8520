from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("tasks_admin.api.urls")),
    path("", include("tasks_admin.urls")),
]
