# The image Kubeflow Pipelines runs beam-ml's tasks in: beam-ml export kubeflow ... --image IMAGE.
#
#   docker build -t REGISTRY/beam-ml:0.1.0 . && docker push REGISTRY/beam-ml:0.1.0
#
# beam-ml and its pinned dependencies (constraints.txt, the set `make test` checks) with kfp
# (the kubeflow extra), installed into site-packages; the examples in /app, the working
# directory, where the tasks find a relative pipeline file (examples/penguin/pipeline.py).
# Your own pipeline files: build FROM this image and COPY them under /app.
#
# No ENTRYPOINT: kfp gives each task's full command line (sh -ec ... python3 -m
# kfp.dsl.executor_main ...), in a Kubernetes pod as in kfp.local's DockerRunner, which
# would otherwise run it as arguments of the entrypoint.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only the package sources: a source tree in the working directory would shadow the
# installed package (beam_ml.transforms and beam_ml.runners exist only as installed).
COPY setup.py pyproject.toml constraints.txt /src/
COPY beam_ml /src/beam_ml
COPY transforms /src/transforms
COPY runners /src/runners
RUN pip install -c /src/constraints.txt "/src[kubeflow]" && rm -rf /src

WORKDIR /app
COPY examples /app/examples

CMD ["beam-ml", "--help"]
