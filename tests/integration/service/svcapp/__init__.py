"""The test service's app: a few models and handlers whose behaviour the event data steers."""
