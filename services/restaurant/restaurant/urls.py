from common.http import healthz
from django.urls import path

from restaurant import views

urlpatterns = [
    path("api/restaurants/", views.collection),
    path("api/restaurants/<uuid:pk>/", views.item),
    path("healthz", healthz),
]

handler404 = "common.http.not_found"
handler500 = "common.http.server_error"
