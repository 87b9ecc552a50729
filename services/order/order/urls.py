from common.http import healthz
from django.urls import path

from order import views
from rabbitsync.django.metrics import metrics_view

urlpatterns = [
    path("api/restaurants/", views.restaurant_collection),
    path("api/menu-items/", views.menu_item_collection),
    path("api/orders/", views.order_collection),
    path("api/orders/<uuid:pk>/", views.order),
    path("healthz", healthz),
    path("metrics", metrics_view),
]

handler404 = "common.http.not_found"
handler500 = "common.http.server_error"
