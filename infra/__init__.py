"""Deployment: the plan of ``make deploy`` (``python -m infra.deploy``)."""
