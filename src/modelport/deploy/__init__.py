"""Generators of the files that ship a model: container image, compose stack, Kubernetes,
Helm and KServe manifests. They read the settings and the registry only, and write text; the
CLI's ``modelport export …`` commands put it into files."""
