"""{{ cookiecutter.project_name | docstring }}.

{{ cookiecutter.description | docstring }}.
"""
