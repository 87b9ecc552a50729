from common.http import healthz
from django.urls import path

from restaurant_menu import views

urlpatterns = [
    path("api/restaurants/", views.restaurant_collection),
    path("api/menu-items/", views.item_collection),
    path("api/menu-items/<uuid:pk>/", views.item),
    path("healthz", healthz),
]

handler404 = "common.http.not_found"
handler500 = "common.http.server_error"
