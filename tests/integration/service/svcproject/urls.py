"""The test service's URLs: only the admin, whose rabbitsync pages test_library_admin.py opens."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
