from common.http import healthz
from django.urls import path

from rabbitsync.django.metrics import metrics_view
from restaurant_menu import views

urlpatterns = [
    path("api/restaurants/", views.restaurant_collection),
    path("api/menu-items/", views.item_collection),
    path("api/menu-items/<uuid:pk>/", views.item),
    path("healthz", healthz),
    path("metrics", metrics_view),
]

handler404 = "common.http.not_found"
handler500 = "common.http.server_error"
