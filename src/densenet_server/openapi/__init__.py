"""The OpenAPI 3.1 document of every route, served at /openapi.json and rendered by /docs.

Written by hand (rather than generated from the code) so that it can say what each route means; the
tests check that every Flask route appears here and that answers conform to it. What depends on the served
models (their names, versions, the largest class count) comes from their summaries.

Its modules: answers (JSON bodies and the two error forms), served (what is said of the served models),
parameters, schemas and v2_schemas (the components), seed_paths (the seed API and the uploads), v2_paths,
operations (metrics, this document, the pages), security (API keys), and document (the assembly).
"""

from .document import openapi_document

__all__ = ["openapi_document"]
