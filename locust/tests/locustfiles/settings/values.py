"""Test settings a locustfile imports, as teams keep them beside their locustfiles."""
ECHO = "/echo"
CODES = [200, 204]
CREDENTIALS = {"user": "admin", "password": "s3cret"}
