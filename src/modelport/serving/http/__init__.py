"""The HTTP transport: the front door, protocol routes, the management API."""
