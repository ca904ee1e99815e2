"""The control plane: a multi-user REST API that runs the lifecycle as jobs.

``app.py`` only wires the domain packages together; ``deps.py`` holds the one authentication and
authorization path every route goes through. Each domain (auth, projects, audit, datasets, jobs,
models, deployments, usage) keeps its tables (orm.py), queries (repository.py), rules (service.py),
pydantic shapes (schemas.py) and HTTP routes (routes.py) to itself.
"""
