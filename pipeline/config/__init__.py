"""Specifications, parsed and validated only: layouts, 外字 tables, standard definitions, mappings, jobs and matching configurations."""
