"""Maps the repository's top-level folders to the installed `sigmagraph.*` namespace.

The folders stay `engine/`, `nodes/`, `web/`, `workflows/` in the checkout; installed, they
become `sigmagraph.engine`, `sigmagraph.nodes`, ... so that generic names like `nodes`
never clash with other distributions.
"""

from setuptools import find_packages, setup

CODE = ("engine", "nodes", "compat")
DATA = ("web", "workflows")

packages = []
package_dir = {}
for folder in CODE + DATA:
    package_dir[f"sigmagraph.{folder}"] = folder
    packages.append(f"sigmagraph.{folder}")
    packages += [f"sigmagraph.{folder}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: ["*", "**/*"] for name in packages},
    include_package_data=True,
)
