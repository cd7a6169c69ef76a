"""The web adapter: create_app(), blueprints per audience, templates and static files."""
