"""The one exception the data package raises for unusable data."""


class DatasetError(Exception):
    """A dataset is missing, corrupt, or not in the expected format; the message names the file."""
