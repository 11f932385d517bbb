"""Reference implementations for the FCN course."""
