"""Customer Value Warehouse helper scripts (synthetic raw data generation and friends)."""
