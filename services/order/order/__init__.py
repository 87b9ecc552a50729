"""The order service: owns orders (ORDER_CREATED), keeps copies of restaurants and menu items."""
