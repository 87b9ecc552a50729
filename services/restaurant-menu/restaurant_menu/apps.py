from django.apps import AppConfig


class RestaurantMenuConfig(AppConfig):
    name = "restaurant_menu"
    default_auto_field = "django.db.models.BigAutoField"
