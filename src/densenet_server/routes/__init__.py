"""HTTP routes, one blueprint per concern; they call the service and never the model."""
