"""Request and response models of the REST API (`XCreate / XUpdate / XPublic`), one module per resource,
apart from the ORM models.

Field rules come from the services (one rule, used by the API and the CLI alike). The base classes
and the error shape every route shares are in `common`.
"""
