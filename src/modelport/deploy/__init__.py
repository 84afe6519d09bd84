"""Generators of the files that ship a model: container image, compose stack, Kubernetes,
Helm and KServe manifests. They read the settings and the registry only, and write text; the
CLI's ``modelport export …`` commands put it into files.

``dockerfile``, ``pins`` and ``bake`` make the image; ``compose`` the compose stack;
``values``, ``kubernetes``, ``helm`` (and ``helm_templates``) and ``kserve`` the cluster
manifests, ``values`` being the one source of both the plain manifests and the chart;
``grafana`` the dashboard. The image and the pods share the user id, home and port the
``dockerfile`` module names, so an image from one runs under the other's security context.
"""
