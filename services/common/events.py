"""The event types the example services exchange, and what their ``data`` carries.

Every event is a full snapshot of the entity (never a diff): last-writer-wins keeps or drops a
write as a whole, so a partial write would lose fields. ``subject`` is the entity's UUID, and the
CloudEvent's version (``rabbitsyncversion``) orders writes to it. ``*_DELETED`` carries the last
snapshot too and becomes a tombstone in every copy, so a late ``*_UPDATED`` cannot resurrect it.

No secrets travel: the seed's ``RESTAURANT_CREATED`` carried the raw password; ours carry only what
other services display or need to validate references.
"""

RESTAURANT_CREATED = "RESTAURANT_CREATED"
RESTAURANT_UPDATED = "RESTAURANT_UPDATED"
RESTAURANT_DELETED = "RESTAURANT_DELETED"
RESTAURANT_EVENTS = (RESTAURANT_CREATED, RESTAURANT_UPDATED, RESTAURANT_DELETED)
"""data: ``{"id", "name", "email", "address", "cuisine"}``"""

MENU_ITEM_CREATED = "MENU_ITEM_CREATED"
MENU_ITEM_UPDATED = "MENU_ITEM_UPDATED"
MENU_ITEM_DELETED = "MENU_ITEM_DELETED"
MENU_ITEM_EVENTS = (MENU_ITEM_CREATED, MENU_ITEM_UPDATED, MENU_ITEM_DELETED)
"""data: ``{"id", "restaurant_id", "name", "description", "price_cents", "available"}``"""

ORDER_CREATED = "ORDER_CREATED"
ORDER_EVENTS = (ORDER_CREATED,)
"""data: ``{"id", "restaurant_id", "customer_name", "items": [{"menu_item_id", "name", "quantity",
"price_cents"}], "total_cents", "status", "placed_at"}``"""

DELETED_SUFFIX = "_DELETED"


def is_deletion(event_type: str) -> bool:
    return event_type.endswith(DELETED_SUFFIX)
