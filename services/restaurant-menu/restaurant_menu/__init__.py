"""The restaurant-menu service: owns menu items (MENU_ITEM_*), keeps a copy of restaurants (RESTAURANT_*)."""
