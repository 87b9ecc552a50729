from common.http import healthz
from django.urls import path

from order import views

urlpatterns = [
    path("api/restaurants/", views.restaurant_collection),
    path("api/menu-items/", views.menu_item_collection),
    path("api/orders/", views.order_collection),
    path("api/orders/<uuid:pk>/", views.order),
    path("healthz", healthz),
]

handler404 = "common.http.not_found"
handler500 = "common.http.server_error"
