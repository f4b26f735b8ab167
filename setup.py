"""Build script: the package ``ikou`` is assembled from the top-level folders
``kernels/``, ``transforms/``, ``pipeline/`` and ``expectations/``, and every
``kernels/*.pyx`` is compiled with Cython.

Compiler directives are set once here. ``IKOU_DEBUG_BUILD=1`` turns bounds
checking, wrap-around and initialised-memory checks back on (use it to hunt
memory errors; see README).  Beam's ``--setup_file`` uses this same file to
build workers.
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("IKOU_DEBUG_BUILD", "") not in ("", "0")
CPUS = os.cpu_count() or 1

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "ikou.kernels." + os.path.splitext(os.path.basename(path))[0],
        [path],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for path in sorted(glob.glob("kernels/*.pyx"))
    # IKOU_KERNELS=_decode,_compare builds only those modules (a quicker edit-compile loop).
    if not os.environ.get("IKOU_KERNELS")
    or os.path.splitext(os.path.basename(path))[0] in os.environ["IKOU_KERNELS"].split(",")
]

# Each top-level folder is a sub-package of ``ikou``; its sub-folders with an __init__.py are
# sub-packages of that (ikou.pipeline.config, ikou.transforms.decode, ...).
TOP = {"kernels": "ikou.kernels", "transforms": "ikou.transforms", "pipeline": "ikou.pipeline",
       "expectations": "ikou.expectations"}
packages = [
    pkg + ("." + os.path.relpath(root, folder).replace(os.sep, ".") if root != folder else "")
    for folder, pkg in TOP.items()
    for root, _dirs, files in sorted(os.walk(folder))
    if "__init__.py" in files
]

setup(
    packages=packages,
    package_dir={pkg: folder for folder, pkg in TOP.items()},
    package_data={
        # .pyi / py.typed: the types of the compiled kernels for type checkers (PEP 561)
        "ikou.kernels": ["*.pyx", "*.pxd", "*.pyi", "py.typed", "tables/*.tbl",
                         "tables/README.md"],
        "ikou.transforms": ["py.typed"],
        "ikou.pipeline": ["data/*", "data/*/*"],
        "ikou.expectations": ["suites/*.json", "suites/*/*.json"],
    },
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        # Directives are not part of cythonize's staleness check: regenerate the C files when
        # switching between the normal and the bounds-checked build.
        force=DEBUG or os.environ.get("IKOU_FORCE_CYTHON", "") not in ("", "0"),
        annotate=os.environ.get("IKOU_ANNOTATE", "") not in ("", "0"),
        nthreads=CPUS,
    ),
    # The kernels are compiled side by side (a fresh set-up spends most of its time in gcc).
    options={"build_ext": {"parallel": CPUS}},
    zip_safe=False,
)
