"""The REST routes, one module per page family; each route translates and calls identity."""
