"""The wire format: marshmallow schemas for responses, query arguments, imports and errors."""
