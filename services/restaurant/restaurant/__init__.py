"""The restaurant service: owns restaurants, publishes RESTAURANT_*, applies the other cluster's."""
