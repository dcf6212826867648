"""The HTTP layer: the one WSGI application (app), its error renderer (rendering), the dashboard, and the
server that wires store, service, scheduler and executor together behind it (server)."""
