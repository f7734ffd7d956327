"""beam-ml: an ML pipeline framework on Apache Beam, in the spirit of TFX.

`transforms/` and `runners/` live at the top of the repository and are
installed as `beam_ml.transforms` and `beam_ml.runners` (see package_dir).
"""

from setuptools import setup

# One set that installs together on Python 3.11 (checked by `make test` on a
# fresh venv). constraints.txt pins the rest of the tree for reproducibility.
INSTALL_REQUIRES = [
    "apache-beam[gcp,aws]==2.77.0",
    "tensorflow==2.21.0",
    "tensorflow-transform==1.21.0",
    "tfx-bsl==1.21.0",
    "tensorflow-metadata==1.21.0",
    "pyarrow==25.0.1",
    "numpy>=2,<3",
    "SQLAlchemy>=2.1,<2.2",
    "psycopg[binary]>=3.2,<4",
    "google-cloud-dataflow-client==0.13.0",
    "rich>=13",
    "palmerpenguins==0.1.6",
    "keras-tuner==1.4.8",
    "tensorboard==2.21.0",
    # the HTML views (report, ui, notebooks): templates, charts with their JS inlined, the local web app
    "Jinja2==3.1.6",
    "plotly==7.1.0",
    "starlette==1.10.0",
    "uvicorn==0.55.0",
    # beam-ml watch: cron schedules, and file events on local input directories
    "croniter==7.0.0",
    "watchdog==7.1.0",
]

# `beam-ml export kubeflow` and the image the Dockerfile builds (kfp 2.17 needs requests==2.33.0)
KUBEFLOW_REQUIRES = ["kfp==2.17.3"]

TEST_REQUIRES = [
    *KUBEFLOW_REQUIRES,
    "pytest>=8",
    "hypothesis==6.170.17",
    "ruff==0.17.6",
    "scikit-learn==1.9.1",
    "pyinstrument==5.1.3",
    "playwright==1.65.2",
    "nbclient==0.11.0",
    "nbformat==5.11.1",
    "ipykernel==7.4.0",
]

setup(
    name="beam-ml",
    version="0.1.0",
    description="ML pipelines on Apache Beam: ingest, validate, transform, train, evaluate, push, batch-infer",
    python_requires=">=3.11,<3.12",
    packages=[
        "beam_ml",
        "beam_ml.metadata",
        "beam_ml.orchestration",
        "beam_ml.testing",
        "beam_ml.components",
        "beam_ml.views",
        "beam_ml.transforms",
        "beam_ml.runners",
        "beam_ml.runners.flink",
    ],
    package_dir={
        "beam_ml": "beam_ml",
        "beam_ml.transforms": "transforms",
        "beam_ml.runners": "runners",
    },
    package_data={"beam_ml.views": ["templates/*.html"], "beam_ml.testing": ["airflow-*-constraints.txt"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "kubeflow": KUBEFLOW_REQUIRES},
    entry_points={"console_scripts": ["beam-ml=beam_ml.run:main"]},
)
