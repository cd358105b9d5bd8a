"""{{ cookiecutter.project_name | docstring }}.

{{ cookiecutter.description | docstring }}.
"""

NAME = "{{ cookiecutter.project_slug }}"
# debian/changelog's version; the generated tests fail when the two differ.
__version__ = "{{ cookiecutter.version }}"
